#!/usr/bin/env bash
# Install the Debian packages one purpose needs, when they are missing:
#   install-system-deps.sh demo   what `make demo` runs: the broker (mosquitto), the zone data
#                                 (the demo's patients live in Asia/Shanghai) and python3-venv
#   install-system-deps.sh test   (the default) what `make test` starts as well: PostgreSQL,
#                                 VictoriaMetrics, Chromium with a CJK font, docker-compose,
#                                 openssl, mosquitto_passwd, libfaketime
# Runs apt-get as root, through sudo otherwise; says clearly what to do if neither works.
# The packages' own system services are never used (the demo and the tests start their own).
set -euo pipefail

purpose="${1:-test}"
case "$purpose" in
  demo|test) ;;
  *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac

need=()
have_cmd() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }

# demo (and test)
have_cmd mosquitto || need+=(mosquitto)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
# IANA time zone data: zoneinfo reads it for patients' local protocol windows.
[ -e /usr/share/zoneinfo/Asia/Shanghai ] || need+=(tzdata)

if [ "$purpose" = test ]; then
  have_cmd mosquitto_passwd || need+=(mosquitto)
  have_cmd victoria-metrics || need+=(victoria-metrics)
  if ! have_cmd initdb && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    need+=(postgresql)
  fi
  have_cmd chromium || need+=(chromium)
  # A CJK font, so Chromium draws the dashboard's and pairing page's Chinese (tests, screenshots).
  [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need+=(fonts-wqy-microhei)
  have_cmd docker-compose || need+=(docker-compose)
  have_cmd openssl || need+=(openssl)
  # libfaketime: the fault suite sets a hub's wall clock ahead and back (LD_PRELOAD).
  ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || need+=(libfaketime)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "system packages ($purpose): all present"
  exit 0
fi
# de-duplicate
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
echo "system packages ($purpose): installing ${need[*]}"

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "error: need root or passwordless sudo to install: ${need[*]}" >&2
  echo "       run as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Keep package installs from starting the system services (mosquitto, postgresql).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${SUDO[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}"
