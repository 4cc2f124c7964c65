#!/usr/bin/env bash
# docker-compose.yml's PostgreSQL, secured as `hub dev up`'s is (hub/devstack/postgres.py): TLS on with the
# deployment CA's certificate, SCRAM-SHA-256 passwords, and a pg_hba.conf of `hostssl ... scram-sha-256` lines
# only. The container's entrypoint, as root (the image's default): it hands the image's docker-entrypoint.sh
# (which runs the server as `postgres`) what the server's user may read.
#
# Compose bind-mounts the secrets with the host's owner and mode 0600, and PostgreSQL wants its key owned by
# the server's user and closed to others: the certificate, key and role passwords are copied into a private
# folder owned by `postgres`. init-roles.sh reads the passwords there on a new volume; on an existing one,
# pg_hba.conf is installed here, so the volume always has this file's rules.
#
#   start.sh [postgres ARGS]  the entrypoint (the image's server, with TLS on)
#   start.sh health           exit 0 once the superuser gets in over TCP with TLS verified (the healthcheck;
#                             the entrypoint's temporary server during the first start listens on no TCP port)
set -euo pipefail

SECRETS=/run/secrets
PRIVATE=/run/hub-postgres # a tmpfs in docker-compose.yml
PGDATA=${PGDATA:-/var/lib/postgresql/data}

die() {
  printf 'postgres-start: %s\n' "$*" >&2
  exit 1
}

if [ "${1:-}" = health ]; then
  PGPASSWORD=$(<"$SECRETS/pg-postgres") exec psql --no-psqlrc --quiet --tuples-only \
    "host=127.0.0.1 dbname=postgres user=postgres sslmode=verify-full sslrootcert=$SECRETS/ca.pem connect_timeout=3" \
    --command "select 1" --output /dev/null
fi

[ "$(id -u)" = 0 ] || die "must start as root (the image's default user), to hand the secrets to postgres"
for required in postgres.pem postgres-key.pem pg-postgres; do
  [ -r "$SECRETS/$required" ] || die "no $SECRETS/$required: make the secrets with \`hub dev compose-secrets\` first"
done
mkdir -p "$PRIVATE"
cp "$SECRETS/postgres.pem" "$PRIVATE/server.crt"
cp "$SECRETS/postgres-key.pem" "$PRIVATE/server.key"
cp "$SECRETS"/pg-* "$PRIVATE/"
chown -R postgres:postgres "$PRIVATE"
chmod 0700 "$PRIVATE"
chmod 0600 "$PRIVATE"/*
if [ -s "$PGDATA/PG_VERSION" ]; then
  install -o postgres -g postgres -m 0600 /opt/hub/pg_hba.conf "$PGDATA/pg_hba.conf"
fi
export HUB_SECRETS_DIR=$PRIVATE # for init-roles.sh

set -- "${@:-postgres}"
if [ "$1" = postgres ]; then
  shift
  set -- postgres \
    -c ssl=on \
    -c ssl_cert_file="$PRIVATE/server.crt" \
    -c ssl_key_file="$PRIVATE/server.key" \
    -c ssl_min_protocol_version=TLSv1.2 \
    -c password_encryption=scram-sha-256 \
    "$@"
fi
exec docker-entrypoint.sh "$@"
