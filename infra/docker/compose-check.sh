#!/usr/bin/env bash
# Validate docker-compose.yml with `docker compose config -q`. When the Docker client on this machine
# has no compose plugin, build the official one (github.com/docker/compose/v2) from the Go module proxy
# into the git-ignored state folder first; no Docker engine is needed for `config`.
set -euo pipefail
cd "$(dirname "$0")/../.."
version="v2.40.3"
if docker compose version >/dev/null 2>&1; then
  exec docker compose config -q
fi
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
DOCKER_CONFIG="$config_dir" docker compose config -q
