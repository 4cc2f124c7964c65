#!/usr/bin/env bash
# Validate docker-compose.yml with `docker compose config -q` (every profile's services included). When the
# Docker client on this machine has no compose plugin, build the official one (github.com/docker/compose/v2)
# from the Go module proxy into the git-ignored state folder first; no Docker engine is needed for `config`.
# Then check that the file's secrets are the ones `hub dev compose-secrets` makes (made in a scratch folder,
# not .hub): a principal or role added to the hub (a court in infra/kafka/acls.toml, an agency) but not to
# docker-compose.yml fails here, not at the broker's first start.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="v2.40.3"
if ! docker compose version >/dev/null 2>&1; then
  command -v go >/dev/null || { echo "no 'docker compose' and no Go toolchain to build it" >&2; exit 2; }
  config_dir="$PWD/.hub/docker"
  plugin="$config_dir/cli-plugins/docker-compose"
  if [ ! -x "$plugin" ]; then
    echo "building the docker compose plugin $version from the Go module proxy (a few minutes, once)..." >&2
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v2@$version" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
    cp -r "$dir" "$work/src" && chmod -R u+w "$work/src"
    mkdir -p "$(dirname "$plugin")"
    (cd "$work/src" && go build -o "$plugin" ./cmd)
  fi
  export DOCKER_CONFIG="$config_dir"
fi
docker compose --profile cli config -q

hub=.venv/bin/hub
if [ ! -x "$hub" ]; then
  echo "compose-check: no $hub (make install): the secrets were not compared with hub dev compose-secrets" >&2
  exit 0
fi
scratch=$(mktemp -d)
trap 'rm -rf "$scratch" ${work:+"$work"}' EXIT
"$hub" dev compose-secrets "$scratch/secrets" >/dev/null
docker compose --profile cli config --format json >"$scratch/config.json"
python3 - "$scratch/secrets" "$scratch/config.json" <<'EOF'
"""Every file hub dev compose-secrets makes is a compose secret of the same name (the CA's key and the
broker's separate certificate and key excepted: no service reads them), the broker gets every Kafka
principal's password and the database server every role's."""
import json
import os
import sys

made = set(os.listdir(sys.argv[1])) - {"ca-key.pem", "broker.pem", "broker-key.pem"}
config = json.load(open(sys.argv[2]))
declared = {name: os.path.basename(spec.get("file", "")) for name, spec in config.get("secrets", {}).items()}
problems = [f"secret {name} is the file {file}, not {name}" for name, file in declared.items() if file != name]
problems += [f"no secret {name} in docker-compose.yml" for name in sorted(made - set(declared))]
problems += [f"secret {name} is not made by hub dev compose-secrets" for name in sorted(set(declared) - made)]
for service, prefix in (("kafka", "kafka-"), ("postgres", "pg-")):
    given = {s["source"] for s in config["services"][service].get("secrets", [])}
    problems += [f"the {service} service lacks the secret {n}" for n in sorted(made) if n.startswith(prefix) and n not in given]
if problems:
    sys.exit("docker-compose.yml and hub dev compose-secrets disagree:\n  " + "\n  ".join(problems))
EOF
