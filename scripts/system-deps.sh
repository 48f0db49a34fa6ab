#!/usr/bin/env bash
# Debian packages the tests need: Chromium (browser tests), PostgreSQL (integration tests),
# Redis, iproute2 + util-linux (the isolated network namespace), Node.js + npm (the 100ms SDKs,
# vendor/package.json). Installs only what is missing.
set -euo pipefail
needed=()
command -v chromium >/dev/null || needed+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || needed+=(postgresql)
command -v psql >/dev/null || needed+=(postgresql-client)
command -v redis-server >/dev/null || needed+=(redis-server)
command -v ip >/dev/null || needed+=(iproute2)
command -v unshare >/dev/null || needed+=(util-linux)
command -v node >/dev/null || needed+=(nodejs)
command -v npm >/dev/null || needed+=(npm)
if [ ${#needed[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${needed[*]}"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}"
fi
