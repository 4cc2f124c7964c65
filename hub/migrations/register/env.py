from alembic import context

from hub.migrations import run_env

run_env(context)
