#!/usr/bin/env bash
# docker-compose.yml's PostgreSQL, first start only (docker-entrypoint-initdb.d, as the server's superuser over
# its Unix socket): what hub.db.provision does on the local stack. Every service's login roles with their
# passwords from the secrets, each service's database owned by its own role and closed to every other role but
# its checker and the auditor; then TLS-and-SCRAM-only pg_hba.conf. Table grants are the hub's business: each
# service gives them after its migrations (hub.db.grants).
#
# Roles (LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE): auditor, and per agency of HUB_AGENCIES (default
# bank,tax,land,transport) <agency> and <agency>_checker, ledger, register and web (which also reads the
# register's public listings). Passwords: pg-<role> in HUB_SECRETS_DIR
# (start.sh copies /run/secrets there for the server's user). Safe to run twice: existing roles and databases
# are kept, and the passwords set from the files.
#
# The entrypoint runs it if it is executable and sources it otherwise: the body runs in a subshell either way.

init_roles() (
  set -euo pipefail
  secrets=${HUB_SECRETS_DIR:-/run/secrets}
  IFS=, read -r -a agencies <<<"${HUB_AGENCIES:-bank,tax,land,transport}"
  agencies=("${agencies[@]// /}")
  roles=(auditor)
  for agency in "${agencies[@]}"; do
    [[ $agency =~ ^[a-z][a-z0-9_]{0,31}$ ]] || {
      echo "init-roles: $agency is not an agency name" >&2
      exit 1
    }
    roles+=("$agency" "${agency}_checker")
  done
  roles+=(ledger register web)

  script="set password_encryption = 'scram-sha-256';
"
  for role in "${roles[@]}"; do
    file="$secrets/pg-$role"
    [ -r "$file" ] || {
      echo "init-roles: no password file $file (hub dev compose-secrets makes one per role)" >&2
      exit 1
    }
    # psql reads the password from the file itself (backquotes): it is on no command line.
    script+="\\set role $role
\\set password \`cat '$file'\`
select format('create role %I', :'role') where not exists (select from pg_roles where rolname = :'role') \\gexec
alter role :\"role\" login inherit nosuperuser nocreatedb nocreaterole password :'password';
"
  done
  script+="revoke all on database postgres from public;
"
  for service in "${agencies[@]}" ledger register web; do
    case $service in
      ledger | web) readers=auditor ;;
      register) readers="web, auditor" ;;
      *) readers="${service}_checker, auditor" ;;
    esac
    script+="select format('create database %I owner %I', '$service', '$service')
  where not exists (select from pg_database where datname = '$service') \\gexec
revoke all on database $service from public;
grant connect on database $service to $readers;
"
  done
  psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "${POSTGRES_USER:-postgres}" --dbname postgres <<<"$script"
  install -m 0600 /opt/hub/pg_hba.conf "$PGDATA/pg_hba.conf"
  echo "init-roles: roles ${roles[*]}; databases ${agencies[*]} ledger register web; pg_hba.conf: hostssl scram-sha-256 only"
)

init_roles
