#!/usr/bin/env bash
# Install the Debian packages the service's tests and local environment run for real.
# Idempotent: installs only what is missing. Needs root (or sudo) on Debian 12.
set -euo pipefail

packages=(postgresql redis-server nginx prometheus prometheus-alertmanager curl jq wrk iproute2)
commands=(/usr/lib/postgresql/*/bin/postgres redis-server nginx prometheus promtool prometheus-alertmanager amtool curl jq wrk ip)

missing=0
for cmd in "${commands[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "$cmd" ]; then missing=1; fi
done
[ "$missing" = 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "error: missing Debian packages; run as root: apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
else
  SUDO=
fi
echo "==> installing Debian packages: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d stops the packages' init scripts from starting system-wide servers we do not use.
printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
$SUDO chmod +x /usr/sbin/policy-rc.d
$SUDO apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
$SUDO rm -f /usr/sbin/policy-rc.d
echo "==> Debian packages ready"
