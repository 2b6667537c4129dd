#!/usr/bin/env bash
# Installs earshot as an appliance on Raspberry Pi OS or Debian (arm64, amd64): libpcap, Node.js >= 22,
# InfluxDB 1.x, Grafana with earshot's provisioning, earshot itself in /opt/earshot, its user, config,
# state directory and systemd unit. Idempotent: a second run changes only what differs.
# `--dry-run` prints every command and every file it would write, and changes nothing.
set -euo pipefail

readonly PREFIX=/opt/earshot
# the config's directory; tests point it elsewhere (an existing config's source is read from it)
readonly CONF_DIR=${EARSHOT_CONF_DIR:-/etc/earshot}
readonly CONF=$CONF_DIR/earshot.yaml
readonly GRAFANA_PASSWORD_FILE=$CONF_DIR/grafana-admin-password
readonly GRAFANA_ENV=$CONF_DIR/grafana-admin.env
readonly DATA_DIR=/var/lib/earshot
readonly BIN=/usr/local/bin/earshot
readonly UNIT=/etc/systemd/system/earshot.service
readonly INFLUX_DROPIN=/etc/systemd/system/influxdb.service.d/earshot.conf
readonly KEYRINGS=/etc/apt/keyrings
readonly APT_LISTS=/etc/apt/sources.list.d
readonly GRAFANA_PROVISIONING=/etc/grafana/provisioning
readonly GRAFANA_DROPIN=/etc/systemd/system/grafana-server.service.d/earshot.conf
readonly GRAFANA_DB=/var/lib/grafana/grafana.db
readonly DEFAULT_DASHBOARDS=/var/lib/earshot/grafana/dashboards
readonly INFLUX_URL=http://127.0.0.1:8086
# InfluxData's primary signing key (https://www.influxdata.com/blog/package-signing-key-rotation);
# its signing subkeys rotate, this fingerprint does not.
readonly INFLUXDATA_FINGERPRINT=24C975CBA61A024EE1B631787C3D57159FC2F927
# The OS check reads this file; tests point it elsewhere.
OS_RELEASE=${EARSHOT_OS_RELEASE:-/etc/os-release}

SRC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ORIG_ARGS=("$@")

usage() {
  cat <<'EOF'
Usage: deploy/install.sh [options]

Installs earshot on Raspberry Pi OS or Debian (arm64, amd64) as a service that starts at boot:
  - libpcap (libpcap0.8) and tcpdump; with --source libpcap also what builds the pcap addon
    (libpcap-dev, g++, make, python3)
  - Node.js >= 22 (a release line that still gets security fixes; Node.js 20 reached its end of life
    on 2026-04-30): the one installed, else the distribution's when new enough, else Node.js 24 LTS
    from NodeSource's apt repository (deb.nodesource.com, node_24.x), which also upgrades the Node.js 20
    an earlier earshot installed from there
  - InfluxDB 1.x: Debian's influxdb package (or InfluxData's apt repository, repos.influxdata.com),
    answering on 127.0.0.1:8086 only
  - Grafana from Grafana's apt repository (apt.grafana.com) with earshot's provisioning from
    deploy/grafana (data source, dashboards, alerting)
  - earshot from this checkout (built here, installed with its production dependencies in
    /opt/earshot, run as /usr/local/bin/earshot) or from an npm tarball (--tarball)
  - the system user earshot (no login, no home), /etc/earshot/earshot.yaml (only when absent, from
    deploy/earshot.example.yaml) and /var/lib/earshot (0750)
  - deploy/systemd/earshot.service as /etc/systemd/system/earshot.service, enabled and started

Run it as root. Running it again is safe: it changes only what differs.

Options:
  --dry-run                 print every command it would run and every file it would write; change
                            nothing (no root needed)
  --interface IF            capture on IF (sets capture.interface in the config; default for a new
                            config: the interface of the default route)
  --source libpcap|tcpdump  how earshot captures: libpcap (default; builds the pcap addon, needs a
                            compiler once) or tcpdump (spawns tcpdump, nothing to build)
  --no-influxdb             do not install InfluxDB (point influx.url at yours)
  --influxdb-from debian|influxdata
                            where InfluxDB 1.x comes from (default debian; falls back to influxdata
                            when the distribution has no influxdb package)
  --no-grafana              do not install Grafana
  --tarball FILE            install earshot from an npm tarball (npm pack) instead of this checkout
  -h, --help                show this help

Environment: EARSHOT_OS_RELEASE (default /etc/os-release) is the file the OS check reads.
Exit codes: 0 done, 2 bad option or a system this script does not support, other: a step failed.
More: docs/install.md.
EOF
}

fail_usage() {
  echo "earshot install: $1 (see --help)" >&2
  exit 2
}

refuse() {
  echo "earshot install: $1" >&2
  exit 2
}

DRY_RUN=0
WITH_INFLUXDB=1
WITH_GRAFANA=1
INFLUXDB_FROM=debian
SOURCE=libpcap
SOURCE_GIVEN=0
INTERFACE=
TARBALL=

need_value() {
  [ "$2" -ge 2 ] || fail_usage "$1 needs a value"
}

while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) DRY_RUN=1 ;;
    --no-influxdb) WITH_INFLUXDB=0 ;;
    --no-grafana) WITH_GRAFANA=0 ;;
    --interface) need_value "$1" $#; INTERFACE=$2; shift ;;
    --interface=*) INTERFACE=${1#*=} ;;
    --source) need_value "$1" $#; SOURCE=$2; SOURCE_GIVEN=1; shift ;;
    --source=*) SOURCE=${1#*=}; SOURCE_GIVEN=1 ;;
    --influxdb-from) need_value "$1" $#; INFLUXDB_FROM=$2; shift ;;
    --influxdb-from=*) INFLUXDB_FROM=${1#*=} ;;
    --tarball) need_value "$1" $#; TARBALL=$2; shift ;;
    --tarball=*) TARBALL=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) fail_usage "unknown option: $1" ;;
  esac
  shift
done

case $SOURCE in libpcap | tcpdump) ;; *) fail_usage "--source must be libpcap or tcpdump, not: $SOURCE" ;; esac
# capture.source of an existing config, '' when it has none
configured_source() {
  sed -n '/^capture:/,/^[^ #]/ s/^  source: *//p' "$CONF" | sed 's/ *#.*//' | tr -d '"'"'"
}
# a re-run without --source keeps what the config captures with: the pcap addon is built when, and only
# when, it is used (a re-run that dropped it left a libpcap config that could not start)
if [ "$SOURCE_GIVEN" -eq 0 ] && [ -f "$CONF" ]; then
  case $(configured_source) in tcpdump) SOURCE=tcpdump ;; stdin) SOURCE=stdin ;; esac
fi
case $INFLUXDB_FROM in debian | influxdata) ;; *) fail_usage "--influxdb-from must be debian or influxdata, not: $INFLUXDB_FROM" ;; esac
if [ -n "$INTERFACE" ] && ! [[ $INTERFACE =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]]; then
  fail_usage "--interface: not an interface name: $INTERFACE"
fi
if [ -n "$TARBALL" ]; then
  [ -f "$TARBALL" ] || fail_usage "--tarball: no such file: $TARBALL"
  TARBALL=$(cd "$(dirname "$TARBALL")" && pwd)/$(basename "$TARBALL")
fi

# ---------------------------------------------------------------- output and the dry-run switch

step_no=0
step() {
  step_no=$((step_no + 1))
  printf '\n== %d. %s\n' "$step_no" "$*"
}
note() { printf '   %s\n' "$*"; }
warn() { printf '   WARNING: %s\n' "$*"; }

# Prints a command as the shell would read it, then runs it unless this is a dry run.
run() {
  printf '   +'
  printf ' %q' "$@"
  printf '\n'
  [ "$DRY_RUN" -eq 1 ] || "$@"
}

# run, inside a directory.
run_in() {
  local dir=$1
  shift
  printf '   + (cd %q &&' "$dir"
  printf ' %q' "$@"
  printf ')\n'
  [ "$DRY_RUN" -eq 1 ] || (cd "$dir" && "$@")
}

CHANGED=0
# write_file DEST MODE OWNER:GROUP [secret] < content: writes DEST when its content, mode or owner
# differ, and sets CHANGED=1 then. The plan shows the content unless it is secret.
write_file() {
  local dest=$1 mode=$2 owner=$3 secret=${4:-}
  local content
  content=$(cat)
  CHANGED=0
  if [ -f "$dest" ] && [ "$(cat "$dest")" = "$content" ] && [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ]; then
    note "unchanged: $dest"
    return 0
  fi
  CHANGED=1
  printf '   > write %s (%s %s)' "$dest" "$mode" "$owner"
  if [ -n "$secret" ]; then
    printf ': %s\n' "$secret"
  else
    printf '\n'
    printf '%s\n' "$content" | sed 's/^/   |   /'
  fi
  [ "$DRY_RUN" -eq 1 ] && return 0
  local tmp
  tmp=$(mktemp "$(dirname "$dest")/.earshot-install.XXXXXX")
  printf '%s\n' "$content" >"$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  # on disk before the rename, and the rename with its directory: a power cut leaves the old file or the
  # new one, never an empty one (a new file renamed unsynced can be empty after a crash)
  sync -- "$tmp"
  mv -f "$tmp" "$dest"
  sync -- "$(dirname "$dest")"
}

# install_file SRC DEST MODE OWNER:GROUP: copies SRC to DEST when they differ (sets CHANGED).
install_file() {
  local src=$1 dest=$2 mode=$3 owner=$4
  CHANGED=0
  if [ -f "$dest" ] && cmp -s "$src" "$dest" && [ "$(stat -c '%a %U:%G' "$dest")" = "${mode#0} $owner" ]; then
    note "unchanged: $dest"
    return 0
  fi
  CHANGED=1
  run install -m "$mode" -o "${owner%%:*}" -g "${owner#*:}" "$src" "$dest"
}

# ensure_dir DIR MODE OWNER:GROUP
ensure_dir() {
  local dir=$1 mode=$2 owner=$3
  if [ -d "$dir" ] && [ "$(stat -c '%a %U:%G' "$dir")" = "${mode#0} $owner" ]; then
    return 0
  fi
  run install -d -m "$mode" -o "${owner%%:*}" -g "${owner#*:}" "$dir"
}

SYSTEMD_RUNNING=0
[ -d /run/systemd/system ] && SYSTEMD_RUNNING=1

# systemctl for what needs a running systemd (daemon-reload, start, restart); said, not run, without it.
systemctl_live() {
  if [ "$SYSTEMD_RUNNING" -eq 1 ]; then
    run systemctl "$@"
  else
    note "systemd is not running here: skipped: systemctl $*"
  fi
}

# enable_unit NAME: enables NAME at boot unless it is already.
enable_unit() {
  if systemctl is-enabled --quiet "$1" 2>/dev/null; then
    note "enabled already: $1"
  else
    run systemctl enable "$1"
  fi
}

# ---------------------------------------------------------------- checks before anything changes

if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  refuse "please run this as root: sudo bash deploy/install.sh ${ORIG_ARGS[*]} (or see the plan first with --dry-run, which needs no root)"
fi

os_field() {
  sed -n "s/^$1=//p" "$OS_RELEASE" 2>/dev/null | head -n 1 | tr -d '"'"'"
}
[ -r "$OS_RELEASE" ] || refuse "cannot read $OS_RELEASE: this installer is for Raspberry Pi OS and Debian"
OS_ID=$(os_field ID)
OS_LIKE=$(os_field ID_LIKE)
OS_NAME=$(os_field PRETTY_NAME)
case " $OS_ID $OS_LIKE " in
  *" debian "* | *" raspbian "* | *" ubuntu "*) ;;
  *) refuse "this installer is for Raspberry Pi OS and Debian (and their derivatives); this is ${OS_NAME:-${OS_ID:-an unknown system}}. See docs/install.md for a manual install, or deploy/compose.yaml." ;;
esac
if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
  refuse "apt-get and dpkg are missing: this installer is for Raspberry Pi OS and Debian"
fi
ARCH=$(dpkg --print-architecture)
case $ARCH in
  arm64 | amd64) ;;
  *) refuse "this installer supports arm64 and amd64, not $ARCH (on a Raspberry Pi, use the 64-bit Raspberry Pi OS)" ;;
esac

if [ "$DRY_RUN" -eq 1 ]; then
  WORK=/tmp/earshot-install.XXXXXX
else
  WORK=$(mktemp -d /tmp/earshot-install.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive

if [ "$DRY_RUN" -eq 1 ]; then
  echo "earshot install plan (dry run: nothing is changed; commands are shown with + and files with >)"
else
  echo "earshot install"
fi
note "system: ${OS_NAME:-$OS_ID}, $ARCH"
note "earshot from: ${TARBALL:-this checkout ($SRC_ROOT)}"

# ---------------------------------------------------------------- apt helpers

APT_STALE=1
apt_update() {
  if [ "$APT_STALE" -eq 1 ]; then
    run apt-get update -q
    APT_STALE=0
  fi
}

pkg_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# apt_install PKG...: installs those not installed yet.
apt_install() {
  local missing=() p installed
  # one dpkg-query for all: each call reads the whole package database
  installed=" $( (dpkg-query -W -f='${db:Status-Abbrev}|${Package}\n' "$@" 2>/dev/null || true) | awk -F'|' '$1 ~ /^ii/ { printf "%s ", $2 }')"
  for p in "$@"; do
    [[ $installed == *" $p "* ]] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    note "installed already: $*"
    return 0
  fi
  apt_update
  run apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The version apt would install (epoch stripped), empty when there is none.
apt_candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2; exit }' | sed -e 's/^[0-9]*://' -e 's/^(none)$//'
}

# add_apt_repo NAME KEY_URL "URI SUITE COMPONENT" [FINGERPRINT]: the vendor's key in
# /etc/apt/keyrings/NAME.gpg and a sources list that trusts only that key for that repository.
add_apt_repo() {
  local name=$1 key_url=$2 repo=$3 fingerprint=${4:-}
  local keyring=$KEYRINGS/$name.gpg
  local line="deb [signed-by=$keyring] $repo"
  if [ -s "$keyring" ] && [ -f "$APT_LISTS/$name.list" ] && [ "$(cat "$APT_LISTS/$name.list")" = "$line" ]; then
    note "apt repository $name: set up already ($APT_LISTS/$name.list)"
    return 0
  fi
  ensure_dir "$KEYRINGS" 0755 root:root
  run curl -fsSL --proto =https -o "$WORK/$name.key" "$key_url"
  if [ -n "$fingerprint" ]; then
    note "check: the key's primary fingerprint must be $fingerprint"
    if [ "$DRY_RUN" -eq 0 ]; then
      local got
      got=$(gpg --show-keys --with-colons "$WORK/$name.key" | awk -F: '$1 == "fpr" { print $10; exit }')
      [ "$got" = "$fingerprint" ] || { echo "earshot install: $key_url has fingerprint ${got:-none}, expected $fingerprint: stopping" >&2; exit 1; }
    fi
  fi
  run gpg --batch --yes --dearmor -o "$keyring" "$WORK/$name.key"
  run chmod 0644 "$keyring"
  write_file "$APT_LISTS/$name.list" 0644 root:root <<<"$line"
  APT_STALE=1
}

# ---------------------------------------------------------------- 1. packages

step "System packages: libpcap, tcpdump and what fetches the vendors' apt keys"
base=(libpcap0.8 tcpdump ca-certificates curl gpg iproute2)
if [ "$SOURCE" = libpcap ]; then
  # the pcap addon is compiled against libpcap when earshot is installed
  base+=(libpcap-dev g++ make python3)
fi
apt_install "${base[@]}"

# ---------------------------------------------------------------- 2. Node.js

# earshot itself runs on Node.js 20.19 or later (package.json's engines), but an appliance that listens
# to the LAN gets a release line still given security fixes: 22 (until 2027-04-30) or newer, from 22.12
# (the first 22 that loads ES modules with require(), as the API's packages do: cli/main.ts); it
# installs 24 LTS
NODE_MIN=22.12
NODE_LTS=24
step "Node.js >= $NODE_MIN"
node_version() {
  "$1" -p 'process.versions.node' 2>/dev/null || echo 0.0.0
}
# whether a version (22.12.0, or a package's 1:22.12.0~dfsg-1) is at least NODE_MIN
new_enough() {
  local v=${1#*:} major minor=0
  major=${v%%.*}
  case "$v" in *.*) v=${v#*.} && minor=${v%%[!0-9]*} ;; esac
  case "$major" in '' | *[!0-9]*) return 1 ;; esac
  [ "$major" -gt "${NODE_MIN%%.*}" ] || { [ "$major" -eq "${NODE_MIN%%.*}" ] && [ "${minor:-0}" -ge "${NODE_MIN#*.}" ]; }
}
NODE=$(command -v node || true)
if [ -n "$NODE" ] && new_enough "$(node_version "$NODE")"; then
  note "using Node.js $("$NODE" --version) at $NODE: new enough"
  if ! command -v npm >/dev/null 2>&1; then
    apt_install npm
  fi
else
  if [ -n "$NODE" ] && [ "$(node_version "$NODE" | cut -d. -f1)" -eq 20 ]; then
    note "Node.js $("$NODE" --version) at $NODE reached its end of life on 2026-04-30 (no more security fixes): replacing it"
  elif [ -n "$NODE" ]; then
    note "Node.js $("$NODE" --version) at $NODE is too old (earshot needs >= $NODE_MIN)"
  fi
  apt_update
  candidate=$(apt_candidate nodejs)
  if [ -n "$candidate" ] && new_enough "$candidate"; then
    note "from the distribution: its nodejs $candidate is new enough"
    apt_install nodejs npm
  else
    note "the distribution offers nodejs ${candidate:-(none)}: too old; installing Node.js $NODE_LTS from NodeSource's apt repository (deb.nodesource.com)"
    # an earlier install's node_20.x line is replaced, and apt-get upgrades its nodejs
    add_apt_repo nodesource https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key "https://deb.nodesource.com/node_$NODE_LTS.x nodistro main"
    apt_update
    # NodeSource's nodejs carries npm; it also replaces an older nodejs from the distribution
    run apt-get install -y -q nodejs
  fi
  NODE=/usr/bin/node
fi

# ---------------------------------------------------------------- 3. InfluxDB

if [ "$WITH_INFLUXDB" -eq 1 ]; then
  step "InfluxDB 1.x on 127.0.0.1:8086"
  if pkg_installed influxdb2; then
    warn "InfluxDB 2.x (influxdb2) is installed: not adding 1.x beside it. Give earshot a token and a DBRP mapping (docs/influxdb.md) and set influx.setup: false."
  else
    # written before the package so that InfluxDB never listens beyond this machine, not even once
    ensure_dir "$(dirname "$INFLUX_DROPIN")" 0755 root:root
    write_file "$INFLUX_DROPIN" 0644 root:root <<'EOF'
# Written by earshot's deploy/install.sh: InfluxDB answers on this machine only, where earshot and
# Grafana run. Remove this file (then systemctl daemon-reload; systemctl restart influxdb) to expose it.
[Service]
Environment=INFLUXDB_HTTP_BIND_ADDRESS=127.0.0.1:8086
EOF
    dropin_changed=$CHANGED
    [ "$dropin_changed" -eq 1 ] && systemctl_live daemon-reload
    if ! pkg_installed influxdb; then
      apt_update
      if [ "$INFLUXDB_FROM" = debian ] && [ -z "$(apt_candidate influxdb)" ]; then
        note "the distribution has no influxdb package: using InfluxData's apt repository instead"
        INFLUXDB_FROM=influxdata
      fi
      if [ "$INFLUXDB_FROM" = influxdata ]; then
        note "from InfluxData's apt repository (repos.influxdata.com)"
        add_apt_repo influxdata https://repos.influxdata.com/influxdata-archive.key "https://repos.influxdata.com/debian stable main" "$INFLUXDATA_FINGERPRINT"
        apt_update
      else
        note "from the distribution: influxdb $(apt_candidate influxdb)"
      fi
    fi
    apt_install influxdb
    enable_unit influxdb.service
    if [ "$dropin_changed" -eq 1 ]; then
      systemctl_live restart influxdb.service
    else
      systemctl_live start influxdb.service
    fi
  fi
fi

# ---------------------------------------------------------------- 4. Grafana

if [ "$WITH_GRAFANA" -eq 1 ]; then
  step "Grafana from Grafana's apt repository (apt.grafana.com)"
  # Grafana makes its admin user at its first start: with a password of this install's, written before
  # that start, not admin/admin (until the owner logged in, anyone on the LAN could, and set it)
  # -s: an empty file (an install cut off before it was on disk) is made again while Grafana never started
  if [ -s "$GRAFANA_PASSWORD_FILE" ]; then
    note "Grafana's admin password: in $GRAFANA_PASSWORD_FILE (an earlier install's)"
  elif [ -f "$GRAFANA_DB" ]; then
    note "Grafana has run before: its admin user is as it was (admin / admin until changed: grafana-cli admin reset-admin-password NEW)"
  else
    grafana_password=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
    ensure_dir "$CONF_DIR" 0755 root:root
    write_file "$GRAFANA_PASSWORD_FILE" 0600 root:root "a random password for Grafana's admin user" <<<"$grafana_password"
    write_file "$GRAFANA_ENV" 0600 root:root "GF_SECURITY_ADMIN_PASSWORD=(that password)" <<<"GF_SECURITY_ADMIN_PASSWORD=$grafana_password"
    ensure_dir "$(dirname "$GRAFANA_DROPIN")" 0755 root:root
    write_file "$GRAFANA_DROPIN" 0644 root:root <<EOF
# Written by earshot's deploy/install.sh: Grafana's admin user gets the password in
# $GRAFANA_PASSWORD_FILE at Grafana's first start (later starts keep whatever it is then).
[Service]
EnvironmentFile=-$GRAFANA_ENV
EOF
    [ "$CHANGED" -eq 1 ] && systemctl_live daemon-reload
  fi
  if ! pkg_installed grafana && ! pkg_installed grafana-enterprise; then
    add_apt_repo grafana https://apt.grafana.com/gpg.key "https://apt.grafana.com stable main"
    apt_install grafana
  else
    note "installed already: grafana"
  fi
fi

# ---------------------------------------------------------------- 5. the earshot user

step "System user earshot (no login, no home)"
if id -u earshot >/dev/null 2>&1; then
  note "exists already: $(id earshot)"
else
  run useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --comment "earshot traffic monitor" earshot
fi

# ---------------------------------------------------------------- 6. earshot itself

step "earshot in $PREFIX"
# deploy/ of the source being installed: the unit, the example config and the Grafana provisioning
DEPLOY_SRC=$SRC_ROOT/deploy
LOCKFILE=
owner=$(stat -c %U "$SRC_ROOT")
owner_home=$(getent passwd "$owner" | cut -d: -f6)

# as_owner CMD...: run in the checkout as the user who owns it, so node_modules and dist stay theirs.
as_owner() {
  if [ "$owner" = root ] || [ "$(id -un)" = "$owner" ]; then
    run_in "$SRC_ROOT" "$@"
  else
    run_in "$SRC_ROOT" runuser -u "$owner" -- env HOME="$owner_home" "$@"
  fi
}

if [ -n "$TARBALL" ]; then
  PACKAGE=$TARBALL
  if [ "$DRY_RUN" -eq 0 ]; then
    run mkdir -p "$WORK/unpacked"
    run tar -xzf "$TARBALL" -C "$WORK/unpacked" --strip-components=1 --no-same-owner
    DEPLOY_SRC=$WORK/unpacked/deploy
  else
    note "(the unit, example config and Grafana provisioning then come from the tarball's deploy/)"
  fi
else
  if [ ! -f "$SRC_ROOT/package.json" ] || [ ! -f "$SRC_ROOT/package-lock.json" ]; then
    refuse "$SRC_ROOT is not an earshot checkout (no package.json and package-lock.json); use --tarball FILE"
  fi
  LOCKFILE=$SRC_ROOT/package-lock.json
  # build in the checkout with its development dependencies (TypeScript), then pack exactly the
  # files the package publishes
  if [ ! -d "$SRC_ROOT/node_modules" ] || [ "$SRC_ROOT/package-lock.json" -nt "$SRC_ROOT/node_modules/.package-lock.json" ]; then
    as_owner npm ci --no-audit --no-fund --loglevel=error
  elif [ ! -f "$SRC_ROOT/dist/cli/main.js" ] \
    || [ -n "$(cd "$SRC_ROOT" && find cli collector api dashboards -name '*.ts' -newer dist/cli/main.js 2>/dev/null | head -n 1)" ]; then
    as_owner npm run build
  else
    note "the checkout's build (dist/) is up to date"
  fi
  [ "$DRY_RUN" -eq 0 ] && [ "$owner" != root ] && chown "$owner" "$WORK"
  as_owner npm pack --ignore-scripts --silent --pack-destination "$WORK"
  PACKAGE=$WORK/earshot-$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$SRC_ROOT/package.json").tgz
fi

APP_CHANGED=0
PCAP_FAILED=0
stamp_of() {
  {
    sha256sum "$PACKAGE" | cut -d' ' -f1
    [ -n "$LOCKFILE" ] && sha256sum "$LOCKFILE" | cut -d' ' -f1
    "$NODE" --version
    echo "$SOURCE"
  } | tr '\n' ' '
}
stamp=
[ "$DRY_RUN" -eq 0 ] && stamp=$(stamp_of)
if [ -n "$stamp" ] && [ -f "$PREFIX/.install-stamp" ] && [ "$(cat "$PREFIX/.install-stamp")" = "$stamp" ]; then
  note "the same build is installed already ($PREFIX/.install-stamp)"
else
  APP_CHANGED=1
  [ "$DRY_RUN" -eq 1 ] && [ -f "$PREFIX/.install-stamp" ] \
    && note "(a dry run does not build, so it cannot tell whether the installed build differs: shown as reinstalled)"
  # assembled beside the old one and swapped in at the end, so a failed step leaves the old install
  run rm -rf "$PREFIX.new"
  run mkdir -p "$PREFIX.new"
  run tar -xzf "$PACKAGE" -C "$PREFIX.new" --strip-components=1 --no-same-owner
  # --ignore-scripts: earshot's own `prepare` would build with TypeScript, which production does not
  # install (dist/ comes built); the one dependency with a build step, pcap, is built next
  if [ -n "$LOCKFILE" ]; then
    run install -m 0644 "$LOCKFILE" "$PREFIX.new/package-lock.json"
    run_in "$PREFIX.new" npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  else
    run_in "$PREFIX.new" npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
  fi
  if [ "$SOURCE" = libpcap ]; then
    if ! run_in "$PREFIX.new" npm rebuild pcap --loglevel=error; then
      warn "the pcap addon did not build: earshot will capture through tcpdump (capture.source: tcpdump)"
      SOURCE=tcpdump
      PCAP_FAILED=1
    fi
  fi
  # the start-up code cache holds only for the Node.js build that made it (deploy/bundle-loader.mjs:
  # another one leaves it aside and every command starts 30-45 ms slower): made again here with this
  # Node.js, by the replay of the demo capture the build uses (a tarball comes with its packer's), with
  # no EARSHOT_* setting, so it writes, alerts and publishes nothing
  if ! run_in "$PREFIX.new" env -i PATH="$PATH" EARSHOT_WRITE_CODE_CACHE=1 "$NODE" dist/collector/bin/start.js replay deploy/demo/household.pcap --format json --no-progress -o /dev/null; then
    warn "the start-up code cache could not be made for Node.js $("$NODE" --version): earshot starts without it (30-45 ms slower)"
    run rm -f "$PREFIX.new/dist/collector/bin/start.cjs.v8cache"
  fi
  [ "$DRY_RUN" -eq 0 ] && printf '%s\n' "$stamp" >"$PREFIX.new/.install-stamp"
  note "> write $PREFIX.new/.install-stamp (what was installed: package and lock file checksums, Node.js version, source)"
  if [ -d "$PREFIX" ]; then
    run rm -rf "$PREFIX.old"
    run mv "$PREFIX" "$PREFIX.old"
  fi
  run mv "$PREFIX.new" "$PREFIX"
  run rm -rf "$PREFIX.old"
fi
write_file "$BIN" 0755 root:root <<EOF
#!/bin/sh
# Written by earshot's deploy/install.sh: runs the earshot installed in $PREFIX.
# --max-semi-space-size: the young generation Node 20 had (cli/heap-flags.ts says why; Node 24's is 4x larger)
exec $NODE --max-semi-space-size=8 $PREFIX/dist/cli/main.js "\$@"
EOF
[ "$CHANGED" -eq 1 ] && APP_CHANGED=1

# ---------------------------------------------------------------- 7. configuration and state

step "Configuration in $CONF_DIR, state in $DATA_DIR"
# the directory is open (Grafana's dashboards may live below it); the config file is not: it can hold
# passwords and tokens
ensure_dir "$CONF_DIR" 0755 root:root
# yaml_set FILE key.path=value...: edits the YAML config in place with the yaml package earshot
# installed, keeping the file's comments.
yaml_set() {
  local file=$1
  shift
  printf '   + set in %s:' "$file"
  printf ' %q' "$@"
  printf '\n'
  [ "$DRY_RUN" -eq 1 ] && return 0
  "$NODE" --input-type=module -e '
    import { createRequire } from "node:module";
    import { closeSync, fchownSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
    import { dirname } from "node:path";
    const [, prefix, file, ...pairs] = process.argv;
    const YAML = createRequire(prefix + "/package.json")("yaml");
    const doc = YAML.parseDocument(readFileSync(file, "utf8"));
    for (const pair of pairs) {
      const at = pair.indexOf("=");
      doc.setIn(pair.slice(0, at).split("."), pair.slice(at + 1));
    }
    // whole or not at all, with the mode and owner it had: a power cut leaves the old config or the new
    const old = statSync(file);
    const tmp = file + ".earshot-install.tmp";
    const fd = openSync(tmp, "w", old.mode & 0o7777);
    try {
      fchownSync(fd, old.uid, old.gid);
      const bytes = Buffer.from(String(doc));
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dir = openSync(dirname(file), "r");
    try { fsyncSync(dir); } finally { closeSync(dir); }
  ' "$PREFIX" "$file" "$@"
}

CONFIG_CHANGED=0
if [ -n "$INTERFACE" ]; then
  CAPTURE_INTERFACE=$INTERFACE
else
  CAPTURE_INTERFACE=$(ip -o route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
fi
if [ -e "$CONF" ]; then
  note "keeping $CONF"
  configured=$(sed -n '/^capture:/,/^[^ #]/ s/^  interface: *//p' "$CONF" | sed 's/ *#.*//' | tr -d '"'"'" | sed 's/^null$//;s/^~$//')
  if [ -z "$INTERFACE" ]; then
    CAPTURE_INTERFACE=$configured
  elif [ "$INTERFACE" != "$configured" ]; then
    yaml_set "$CONF" "capture.interface=$INTERFACE"
    CONFIG_CHANGED=1
  fi
  source_now=$(configured_source)
  if [ "$SOURCE" != "${source_now:-libpcap}" ]; then
    # --source given, or the addon did not build: the config captures the way that was installed
    [ "$PCAP_FAILED" -eq 1 ] && warn "$CONF captured with libpcap, whose addon did not build: it captures with tcpdump now"
    yaml_set "$CONF" "capture.source=$SOURCE"
    CONFIG_CHANGED=1
  fi
else
  CONFIG_CHANGED=1
  install_file "$DEPLOY_SRC/earshot.example.yaml" "$CONF" 0640 root:earshot
  settings=("dataDir=$DATA_DIR" "capture.source=$SOURCE")
  [ -n "$CAPTURE_INTERFACE" ] && settings+=("capture.interface=$CAPTURE_INTERFACE")
  [ "$WITH_INFLUXDB" -eq 1 ] && settings+=("influx.url=$INFLUX_URL")
  yaml_set "$CONF" "${settings[@]}"
fi
if [ -n "$CAPTURE_INTERFACE" ]; then
  note "capture interface: $CAPTURE_INTERFACE (capture.interface in $CONF)"
  [ -e "/sys/class/net/$CAPTURE_INTERFACE" ] || warn "there is no interface $CAPTURE_INTERFACE (yet); earshot retries every 15 s until it appears"
else
  warn "no capture interface: set capture.interface in $CONF, then: systemctl restart earshot"
fi
ensure_dir "$DATA_DIR" 0750 earshot:earshot

# ---------------------------------------------------------------- 8. Grafana provisioning

if [ "$WITH_GRAFANA" -eq 1 ]; then
  step "Grafana provisioning from deploy/grafana"
  GRAFANA_SRC=$DEPLOY_SRC/grafana
  if [ ! -d "$GRAFANA_SRC/provisioning" ]; then
    warn "no $GRAFANA_SRC/provisioning: Grafana runs without earshot's data source and dashboards"
    grafana_changed=0
  else
    grafana_changed=0
    for dir in "$GRAFANA_SRC"/provisioning/*/; do
      kind=$(basename "$dir")
      ensure_dir "$GRAFANA_PROVISIONING/$kind" 0755 root:grafana
      for file in "$dir"*.yaml "$dir"*.yml; do
        [ -f "$file" ] || continue
        install_file "$file" "$GRAFANA_PROVISIONING/$kind/$(basename "$file")" 0640 root:grafana
        [ "$CHANGED" -eq 1 ] && grafana_changed=1
      done
    done
    # the dashboards go where the file provider looks for them (options.path)
    dashboards=$(cat "$GRAFANA_SRC"/provisioning/dashboards/*.y*ml 2>/dev/null \
      | sed -n 's/^ *path: *//p' | head -n 1 | tr -d '"'"'" || true)
    dashboards=${dashboards:-$DEFAULT_DASHBOARDS}
    note "dashboards: $dashboards (the provider's options.path)"
    case $dashboards in
      "$DATA_DIR"/*)
        # /var/lib/earshot is 0750 earshot:earshot: Grafana reaches its dashboards through the group.
        # The service's UMask=0077 keeps earshot's own files there private.
        if id -nG grafana 2>/dev/null | tr ' ' '\n' | grep -qx earshot; then
          note "grafana is in group earshot already"
        else
          run usermod -a -G earshot grafana
          grafana_changed=1
        fi
        ensure_dir "$DATA_DIR/grafana" 0750 root:grafana
        ;;
    esac
    ensure_dir "$dashboards" 0750 root:grafana
    for file in "$GRAFANA_SRC"/dashboards/*.json; do
      [ -f "$file" ] || continue
      install_file "$file" "$dashboards/$(basename "$file")" 0640 root:grafana
      [ "$CHANGED" -eq 1 ] && grafana_changed=1
    done
  fi
  enable_unit grafana-server.service
  if [ "$grafana_changed" -eq 1 ]; then
    systemctl_live restart grafana-server.service
  else
    systemctl_live start grafana-server.service
  fi
fi

# ---------------------------------------------------------------- 9. the service

step "systemd unit $UNIT"
install_file "$DEPLOY_SRC/systemd/earshot.service" "$UNIT" 0644 root:root
unit_changed=$CHANGED
[ "$unit_changed" -eq 1 ] && systemctl_live daemon-reload
if systemctl is-enabled --quiet earshot-ssh-feed.service 2>/dev/null; then
  # docs/openwrt.md: the router feeds earshot instead; the two units exclude each other
  note "earshot-ssh-feed.service is enabled (the router feeds earshot): leaving earshot.service off"
  if [ "$APP_CHANGED" -eq 1 ] || [ "$CONFIG_CHANGED" -eq 1 ]; then
    systemctl_live try-restart earshot-ssh-feed.service
  fi
else
  enable_unit earshot.service
  if [ -z "$CAPTURE_INTERFACE" ]; then
    warn "not starting earshot: it has no capture interface yet (see above)"
  elif [ "$APP_CHANGED" -eq 1 ] || [ "$CONFIG_CHANGED" -eq 1 ] || [ "$unit_changed" -eq 1 ]; then
    systemctl_live restart earshot.service
  else
    systemctl_live start earshot.service
  fi
fi

# ---------------------------------------------------------------- done

address=$(hostname -I 2>/dev/null | awk '{ print $1 }')
step "Done"
if [ "$DRY_RUN" -eq 1 ]; then
  note "dry run: nothing was changed"
fi
if [ "$WITH_GRAFANA" -eq 1 ]; then
  if [ -s "$GRAFANA_PASSWORD_FILE" ] || [ "$DRY_RUN" -eq 1 ]; then
    note "Grafana:  http://${address:-THIS-HOST}:3000 (user admin, password: sudo cat $GRAFANA_PASSWORD_FILE)"
  else
    note "Grafana:  http://${address:-THIS-HOST}:3000 (user admin, the password it had before this install)"
  fi
fi
note "API:      http://127.0.0.1:8377/api/v1/health (the token for POSTs: $DATA_DIR/api-token, made at first start)"
note "config:   $CONF (then: systemctl restart earshot)"
note "logs:     journalctl -u earshot -f"
note "state:    $DATA_DIR (last report: $DATA_DIR/last-report.json)"
