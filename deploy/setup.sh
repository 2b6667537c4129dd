#!/usr/bin/env bash
# Prepares a checkout for running earshot and its tests: the Debian packages they need (when missing)
# and the npm dependencies (npm ci, which also builds dist/). Idempotent; fast when all is in place.
#   deploy/setup.sh           packages for running and testing
#   deploy/setup.sh --run     only what running earshot needs (no tshark, no test servers)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-test}
packages=(libpcap-dev tcpdump)
if [ "$mode" != "--run" ]; then
  # tshark is the tests' oracle, influxd and mosquitto their real InfluxDB and MQTT broker, time measures
  # the benchmarks, iproute2 makes the interfaces the live tests take away, strace sees the fsyncs
  packages+=(tshark influxdb mosquitto time shellcheck chromium iproute2 strace)
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "earshot setup: missing system packages: ${missing[*]} (install them with your package manager)" >&2
    exit 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "earshot setup: missing system packages: ${missing[*]}" >&2
    echo "earshot setup: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
  echo "earshot setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  # answer debconf's "should non-superusers capture?" question for wireshark-common without a prompt
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci when node_modules is missing or older than the lock file; it runs `prepare`, which builds dist/
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "earshot setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
elif [ ! -f dist/cli/main.js ] || [ -n "$(find cli collector api dashboards -name '*.ts' -newer dist/cli/main.js 2>/dev/null | head -n 1)" ]; then
  npm run --silent build
fi
