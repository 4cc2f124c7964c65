#!/usr/bin/env bash
# The Kafka broker of docker-compose.yml, secured as `hub dev up`'s is (hub/devstack/kafka.py): KRaft, one node.
# Clients speak SASL_SSL with SCRAM-SHA-512 only, on two listeners: INTERNAL (kafka:19092, the compose network)
# and EXTERNAL (9092, published on the host's loopback). The controller listener speaks TLS with client
# certificates required, on the container's loopback only; the broker's certificate (CN=admin) makes it the
# super user there. The StandardAuthorizer denies whatever no ACL grants (`hub topics create` applies them).
#
#   kafka-start.sh            the container's entrypoint: writes server.properties, formats the storage on first
#                             start with a SCRAM credential for every kafka-<principal> secret, starts the broker
#   kafka-start.sh health     exit 0 once the broker answers the admin over SASL_SSL (the healthcheck)
#   kafka-start.sh add-scram  give the running broker a credential for each kafka-<principal> secret it lacks
#                             (a principal added after the first start; recreate the container with its secret)
#
# Secrets come from /run/secrets (hub dev compose-secrets): ca.pem, broker-keystore.pem, kafka-<principal>.
# Compose bind-mounts them with the host's owner and mode 0600, so the script starts as root, copies them into
# a private folder owned by the broker's user, and runs the broker as that user.
set -euo pipefail

SECRETS=/run/secrets
PRIVATE=/run/hub-kafka # a tmpfs in docker-compose.yml: the copies, server.properties, the admin's client config
DATA=/var/lib/kafka/data
BIN=/opt/kafka/bin
BROKER_USER=appuser # the apache/kafka image's user
MECHANISM=SCRAM-SHA-512
ITERATIONS=8192
INTERNAL=kafka:19092
EXTERNAL=${HUB_KAFKA_EXTERNAL:-127.0.0.1:9092} # the address the host reaches: the published port
CONTROLLER=127.0.0.1:9093

say() { printf 'kafka-start: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

# Every principal with a password file, checked: the names go into --add-scram and a JAAS line.
principals() {
  local file name
  for file in "$PRIVATE"/kafka-*; do
    [ -f "$file" ] || continue
    name=${file#"$PRIVATE"/kafka-}
    [[ $name =~ ^[A-Za-z0-9._-]{1,128}$ ]] || die "$file: not a principal's name"
    printf '%s\n' "$name"
  done
}

password() {
  local value
  value=$(<"$PRIVATE/kafka-$1")
  [[ $value =~ ^[A-Za-z0-9_-]+$ ]] || die "the password of $1 must be URL-safe (hub dev compose-secrets makes such)"
  printf '%s' "$value"
}

# Writes a file only its owner reads.
private_file() {
  (umask 077 && cat >"$1")
}

# As root: the secrets copied for the broker's user. Not as root: copied all the same (they must be readable).
prepare() {
  local required principal
  for required in ca.pem broker-keystore.pem kafka-admin; do
    [ -r "$SECRETS/$required" ] || die "no $SECRETS/$required: make the secrets with \`hub dev compose-secrets\` first"
  done
  mkdir -p "$PRIVATE"
  chmod 0700 "$PRIVATE"
  cp "$SECRETS/ca.pem" "$SECRETS/broker-keystore.pem" "$SECRETS"/kafka-* "$PRIVATE/"
  chmod 0600 "$PRIVATE"/*
  for principal in "$PRIVATE"/kafka-*; do # checked here, outside a subshell, where a bad one stops the start
    principal=${principal#"$PRIVATE"/kafka-}
    [[ $principal =~ ^[A-Za-z0-9._-]{1,128}$ ]] || die "$SECRETS/kafka-$principal: not a principal's name"
    password "$principal" >/dev/null
  done
  if [ "$(id -u)" = 0 ]; then
    chown -R "$BROKER_USER:$BROKER_USER" "$PRIVATE"
    mkdir -p "$DATA"
    chown "$BROKER_USER" "$DATA"
  fi
}

# Runs the rest of this script as the broker's user: setpriv where util-linux has it, else su (BusyBox's on the
# image's Alpine, which execs like setpriv, so the broker stays the container's first process).
as_broker_user() {
  if command -v setpriv >/dev/null; then
    exec setpriv --reuid="$BROKER_USER" --regid="$BROKER_USER" --init-groups /bin/bash "$0" "$@"
  fi
  exec su -s /bin/bash -c 'exec /bin/bash "$0" "$@"' "$BROKER_USER" "$0" "$@"
}

write_properties() {
  local admin_password jaas
  admin_password=$(password admin)
  jaas="org.apache.kafka.common.security.scram.ScramLoginModule required"
  private_file "$PRIVATE/server.properties" <<EOF
# Written by infra/docker/kafka-start.sh at every start; edit that script instead.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=$CONTROLLER
listeners=INTERNAL://0.0.0.0:${INTERNAL##*:},EXTERNAL://0.0.0.0:9092,CONTROLLER://$CONTROLLER
advertised.listeners=INTERNAL://$INTERNAL,EXTERNAL://$EXTERNAL,CONTROLLER://$CONTROLLER
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:SSL,INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL
sasl.enabled.mechanisms=$MECHANISM
listener.name.internal.sasl.enabled.mechanisms=$MECHANISM
listener.name.external.sasl.enabled.mechanisms=$MECHANISM
sasl.mechanism.inter.broker.protocol=$MECHANISM
listener.name.internal.scram-sha-512.sasl.jaas.config=$jaas username="admin" password="$admin_password";
listener.name.external.scram-sha-512.sasl.jaas.config=$jaas;
listener.name.controller.ssl.client.auth=required
ssl.keystore.type=PEM
ssl.keystore.location=$PRIVATE/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$PRIVATE/ca.pem
ssl.endpoint.identification.algorithm=https
ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9.-]*).*\$/\$1/,DEFAULT
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs=$DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
EOF
  private_file "$PRIVATE/admin.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=$MECHANISM
sasl.jaas.config=$jaas username="admin" password="$admin_password";
ssl.truststore.type=PEM
ssl.truststore.location=$PRIVATE/ca.pem
EOF
}

# First start only: the metadata log begins with a credential per principal. The tool's output is shown
# only on failure, and then without the passwords.
format() {
  local cluster_id principal output names=() scram=()
  cluster_id=$(KAFKA_HEAP_OPTS=-Xmx256m "$BIN/kafka-storage.sh" random-uuid)
  while read -r principal; do
    names+=("$principal")
    scram+=(--add-scram "$MECHANISM=[name=$principal,iterations=$ITERATIONS,password=$(password "$principal")]")
  done < <(principals)
  if ! output=$(KAFKA_HEAP_OPTS=-Xmx256m "$BIN/kafka-storage.sh" format --config "$PRIVATE/server.properties" \
    --cluster-id "$cluster_id" --standalone "${scram[@]}" 2>&1); then
    for principal in "${names[@]}"; do
      output=${output//"$(password "$principal")"/***}
    done
    die "formatting $DATA failed:"$'\n'"$output"
  fi
  say "formatted $DATA (cluster $cluster_id) with $MECHANISM credentials for ${names[*]}"
}

serve() {
  write_properties
  [ -f "$DATA/meta.properties" ] || format
  export KAFKA_HEAP_OPTS="-Xms256m -Xmx${HUB_KAFKA_HEAP:-768m}"
  exec "$BIN/kafka-server-start.sh" "$PRIVATE/server.properties"
}

health() {
  KAFKA_HEAP_OPTS=-Xmx128m "$BIN/kafka-broker-api-versions.sh" --bootstrap-server "$INTERNAL" \
    --command-config "$PRIVATE/admin.properties" >/dev/null 2>&1
}

# The passwords go through a file (--add-config-file), never the command line nor the output.
add_scram() {
  local known principal output added=() request="$PRIVATE/scram.properties"
  known=$(configs --describe --entity-type users) || die "cannot list the broker's SCRAM users:"$'\n'"$known"
  while read -r principal; do
    grep -F "user-principal '$principal' are " <<<"$known" | grep -qF "$MECHANISM=" && continue
    printf '%s=iterations=%s,password=%s\n' "$MECHANISM" "$ITERATIONS" "$(password "$principal")" |
      private_file "$request"
    if ! output=$(configs --alter --entity-type users --entity-name "$principal" --add-config-file "$request"); then
      rm -f "$request"
      die "adding a credential for $principal failed:"$'\n'"${output//"$(password "$principal")"/***}"
    fi
    rm -f "$request"
    added+=("$principal")
  done < <(principals)
  say "${#added[@]} $MECHANISM credentials added${added[*]:+: ${added[*]}}; the broker had the others"
}

configs() {
  KAFKA_HEAP_OPTS=-Xmx256m "$BIN/kafka-configs.sh" --bootstrap-server "$INTERNAL" \
    --command-config "$PRIVATE/admin.properties" "$@" 2>&1
}

case "${1:-start}" in
  start)
    prepare
    if [ "$(id -u)" = 0 ]; then
      as_broker_user serve
    fi
    serve
    ;;
  serve) serve ;;
  health) health ;;
  add-scram) add_scram ;;
  *) die "usage: $0 [start|health|add-scram]" ;;
esac
