"""The consumer engine shared by every service; see engine.py and outbox.py."""

from hub.engine.engine import ConsumerEngine, Delivered, EngineError, Handler, RunSummary
from hub.engine.outbox import OutboxMessage, OutboxRelay

__all__ = ["ConsumerEngine", "Delivered", "EngineError", "Handler", "OutboxMessage", "OutboxRelay", "RunSummary"]
