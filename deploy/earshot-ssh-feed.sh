#!/usr/bin/env bash
# Feeds earshot from a router: `ssh ROUTER tcpdump ... | earshot collect --source stdin`, started again
# (after a pause that grows to a minute) whenever the stream ends: the router rebooted, Wi-Fi or the
# link dropped, tcpdump died. Each new stream starts a new earshot run with the same data directory,
# so the inventory, DNS cache and unsent InfluxDB points carry over. docs/openwrt.md explains the setup.
#
#   earshot-ssh-feed.sh --router root@192.168.1.1 [options] [-- earshot collect options]
#
# Options (or their environment variables):
#   --router USER@HOST     EARSHOT_FEED_ROUTER        the router to ssh to (required)
#   --interface IF         EARSHOT_FEED_INTERFACE     the router's interface to capture on (br-lan)
#   --filter BPF           EARSHOT_FEED_FILTER        tcpdump filter (default "not port 22": never the
#                                                     feed's own ssh session)
#   --key FILE             EARSHOT_FEED_KEY           ssh private key (/etc/earshot/ssh/id_ed25519)
#   --known-hosts FILE     EARSHOT_FEED_KNOWN_HOSTS   the router's host key (/etc/earshot/ssh/known_hosts)
#   --once                                            run one stream, do not reconnect
# Everything after -- goes to `earshot collect` (e.g. --config FILE --data-dir DIR).
# EARSHOT_BIN names the earshot executable (default: earshot on PATH); EARSHOT_FEED_PAUSE the first
# pause in seconds before reconnecting (5; it doubles up to 60).
#
# SIGTERM, SIGINT or SIGHUP stops earshot the normal way (it finishes the flows and writes its last points),
# then the ssh session, then this script.
set -euo pipefail

router=${EARSHOT_FEED_ROUTER:-}
interface=${EARSHOT_FEED_INTERFACE:-br-lan}
filter=${EARSHOT_FEED_FILTER:-not port 22}
key=${EARSHOT_FEED_KEY:-/etc/earshot/ssh/id_ed25519}
known_hosts=${EARSHOT_FEED_KNOWN_HOSTS:-/etc/earshot/ssh/known_hosts}
earshot=${EARSHOT_BIN:-earshot}
once=0

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

fail_usage() {
  echo "earshot-ssh-feed: $1 (see --help)" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case $1 in
    --router) [ $# -ge 2 ] || fail_usage "$1 needs a value"; router=$2; shift ;;
    --interface) [ $# -ge 2 ] || fail_usage "$1 needs a value"; interface=$2; shift ;;
    --filter) [ $# -ge 2 ] || fail_usage "$1 needs a value"; filter=$2; shift ;;
    --key) [ $# -ge 2 ] || fail_usage "$1 needs a value"; key=$2; shift ;;
    --known-hosts) [ $# -ge 2 ] || fail_usage "$1 needs a value"; known_hosts=$2; shift ;;
    --once) once=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    *) fail_usage "unknown option: $1" ;;
  esac
  shift
done
collect_args=("$@")

[ -n "$router" ] || fail_usage "--router USER@HOST (or EARSHOT_FEED_ROUTER) is required"
[[ $interface =~ ^[A-Za-z0-9_.:@-]{1,15}$ ]] || fail_usage "--interface: not an interface name: $interface"
[ -r "$key" ] || fail_usage "cannot read the ssh key $key (make one: docs/openwrt.md)"
[ -r "$known_hosts" ] || fail_usage "cannot read $known_hosts, the router's host key (docs/openwrt.md)"
command -v ssh >/dev/null 2>&1 || fail_usage "ssh is missing (apt-get install openssh-client)"

# The filter reaches the router's shell inside single quotes.
quoted_filter="'${filter//\'/\'\\\'\'}'"
remote="tcpdump -i $interface -U -s 0 -w - $quoted_filter"
ssh_options=(
  -F /dev/null -T -e none -i "$key"
  -o BatchMode=yes -o IdentitiesOnly=yes
  -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known_hosts"
  -o ConnectTimeout=10 -o ServerAliveInterval=10 -o ServerAliveCountMax=3
  -o LogLevel=ERROR
)

log() { echo "earshot-ssh-feed: $*" >&2; }

stopping=0
ssh_pid=
earshot_pid=
stream_dir=
stop() {
  stopping=1
  [ -n "$earshot_pid" ] && kill -TERM "$earshot_pid" 2>/dev/null
  return 0
}
trap stop TERM INT HUP
trap '[ -n "$stream_dir" ] && rm -rf "$stream_dir"' EXIT

# wait_for PID: waits for a child even when a signal interrupts the wait; its exit status goes to
# $waited (not printed: a command substitution's subshell cannot wait for this shell's children).
waited=0
wait_for() {
  while :; do
    if wait "$1"; then waited=0; else waited=$?; fi
    # a trapped signal ends the wait early (status 128 + the signal's number), with the child still
    # running, or gone by the time it is looked at (a child that dies at once of the trap's SIGTERM):
    # then that status is the wait's, not the child's, which bash keeps and a second wait gives
    if ! kill -0 "$1" 2>/dev/null; then
      if wait "$1"; then waited=0; else waited=$?; fi
      return 0
    fi
  done
}

first_pause=${EARSHOT_FEED_PAUSE:-5}
pause=$first_pause
while :; do
  started=$SECONDS
  stream_dir=$(mktemp -d "${TMPDIR:-/tmp}/earshot-ssh-feed.XXXXXX")
  mkfifo "$stream_dir/pcap"
  log "streaming $interface from $router"
  # shellcheck disable=SC2029 # $remote is meant to be expanded here, on this side
  ssh "${ssh_options[@]}" "$router" "$remote" >"$stream_dir/pcap" &
  ssh_pid=$!
  "$earshot" collect --source stdin "${collect_args[@]}" <"$stream_dir/pcap" &
  earshot_pid=$!
  wait_for "$earshot_pid"
  earshot_status=$waited
  earshot_pid=
  kill -TERM "$ssh_pid" 2>/dev/null || true
  wait_for "$ssh_pid"
  ssh_status=$waited
  rm -rf "$stream_dir"
  stream_dir=
  if [ "$stopping" -eq 1 ]; then
    # 143: the SIGTERM came before earshot had set up its handler, with nothing to finish yet
    [ "$earshot_status" -eq 143 ] && earshot_status=0
    exit "$earshot_status"
  fi
  if [ "$once" -eq 1 ]; then
    log "stream ended (ssh exit $ssh_status, earshot exit $earshot_status)"
    exit "$earshot_status"
  fi
  # a stream that ran for a while was a good one: start the pauses over
  [ $((SECONDS - started)) -ge 60 ] && pause=$first_pause
  log "stream ended (ssh exit $ssh_status, earshot exit $earshot_status); again in $pause s"
  sleep "$pause" &
  wait $! || kill $! 2>/dev/null || true
  [ "$stopping" -eq 1 ] && exit 0
  pause=$((pause * 2 > 60 ? 60 : pause * 2))
done
