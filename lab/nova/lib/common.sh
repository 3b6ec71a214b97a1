# lab/nova/lib/common.sh - shared settings and helpers of the lab/nova scripts.
# Sourced, never run.  Everything mutable lives in $STATE (IHA_NOVA_STATE,
# default /var/tmp/iha-nova); this folder holds only code and constraints.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2120,SC2119  # variables and helpers used by the sourcing scripts

LAB=${LAB:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}   # lab/nova
STATE=${IHA_NOVA_STATE:-/var/tmp/iha-nova}
VENV=${IHA_NOVA_VENV:-$STATE/venv}   # may be shared by several state dirs
ETC=$STATE/etc
DATA=$STATE/data
RUN=$STATE/run
LOG=$STATE/log
H=127.0.0.1                       # the only address anything binds to or talks to
KS=http://$H:5000
export IHA_NOVA_PASSWORD=${IHA_NOVA_PASSWORD:-secret}   # admin and service users (lab only)
PW=$IHA_NOVA_PASSWORD
DEFAULT_HOSTS=compute-0.localdomain,compute-1.localdomain,compute-2.localdomain

# every service runs in its own session: PID file value == process group id
alive() { [ -s "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

T0=${T0:-$(date +%s.%N)}
since() { echo "$(date +%s.%N) - ${1:-$T0}" | bc | xargs printf '%.1f'; }
ts() { printf '[%6ss] %s\n' "$(since)" "$*"; }
die() { echo "ERROR: $*" >&2; exit 1; }

# configured compute hosts, one per line (written by `up`); the external ones
# (run by someone else, e.g. a Pacemaker lab node, via `compute run`)
hosts() { cat "$ETC/hosts" 2>/dev/null; }
external_hosts() { cat "$ETC/external" 2>/dev/null; }
is_external() { grep -qxF "$1" "$ETC/external" 2>/dev/null; }

# file-name-safe service name of a compute host (the PID file is compute@HOST)
csvc() { echo "compute@$1"; }

# Start "$@" in a new session with its output in $LOG/$name.log; PID file.
# If the caller sits in another network/mount namespace than the lab (e.g. a
# Pacemaker lab node), enter the lab's namespaces first (those of our MariaDB,
# which was started from the lab's namespaces by `up`), so that the service
# reaches 127.0.0.1 of the lab.  nsenter execs (no fork), so PID == PGID.
# LABNS: the command prefix that enters the lab's namespaces from here
# (empty when we are in them already)
lab_ns() {
  LABNS=()
  local ref
  ref=$(cat "$RUN/mysql.pid" 2>/dev/null || true)
  if [ -n "$ref" ] && kill -0 "$ref" 2>/dev/null; then
    if [ "$(readlink /proc/self/ns/net)" != "$(readlink "/proc/$ref/ns/net")" ]; then
      LABNS+=(nsenter "--target=$ref" --net)
      [ "$(readlink /proc/self/ns/mnt)" != "$(readlink "/proc/$ref/ns/mnt")" ] && LABNS+=(--mount)
      LABNS+=(--)
    fi
  fi
  return 0
}

start_bg() { # name cmd...
  local name=$1; shift
  if alive "$name"; then echo "$name already running (pid $(cat "$RUN/$name.pid"))"; return 0; fi
  local pre=()
  lab_ns; pre=("${LABNS[@]}")
  # 9>&-: never hand the per-host lock of `compute` down to the daemon
  setsid "${pre[@]}" "$@" >>"$LOG/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$RUN/$name.pid"
  ts "started $name pid $!"
}

# Signal a group by its PID file; wait up to $2 seconds (default 0) for it to go.
signal_group() { # name SIG
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  kill "-$2" -- "-$pid" 2>/dev/null || kill "-$2" "$pid" 2>/dev/null || true
}
group_gone() { # name: no live (non-zombie) process left in its group/PID
  local pid
  [ -s "$RUN/$1.pid" ] || return 0
  pid=$(cat "$RUN/$1.pid")
  # a killed daemon is re-parented to PID 1, which may reap it late: zombies
  # count as gone
  ! ps -o stat= -p "$pid" -g "$pid" 2>/dev/null | grep -qv '^Z'
}

# Stop the given services: SIGTERM all at once, wait up to GRACE seconds,
# SIGKILL whatever is left (by group), remove the PID files.
stop_services() { # grace name...
  local grace=$1; shift
  local n i left
  for n in "$@"; do signal_group "$n" TERM; done
  for ((i = 0; i < grace * 10; i++)); do
    left=0
    for n in "$@"; do group_gone "$n" || left=1; done
    ((left)) || break
    sleep 0.1
  done
  for n in "$@"; do
    if ! group_gone "$n"; then
      signal_group "$n" KILL; echo "killed $n (no exit within ${grace}s of SIGTERM)"
    fi
  done
  for ((i = 0; i < 50; i++)); do
    left=0
    for n in "$@"; do group_gone "$n" || left=1; done
    ((left)) || break
    sleep 0.1
  done
  for n in "$@"; do group_gone "$n" && rm -f "$RUN/$n.pid"; done
  return 0
}

wait_http() { # url [seconds]
  local url=$1 n=${2:-60} i code=
  for ((i = 0; i < n * 4; i++)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url" || true)
    [[ $code =~ ^(200|300|401)$ ]] && return 0
    sleep 0.25
  done
  echo "timeout waiting for $url (last HTTP code $code)" >&2; return 1
}

compute_conf() { # host -> writes $ETC/nova/compute@HOST.conf (idempotent)
  local h=$1
  mkdir -p "$DATA/$(csvc "$h")"
  cat >"$ETC/nova/$(csvc "$h").conf" <<EOF
[DEFAULT]
host = $h
state_path = $DATA/$(csvc "$h")
[oslo_concurrency]
lock_path = $DATA/$(csvc "$h")
EOF
}

start_compute() { # host
  local h=$1
  [ -f "$ETC/nova/nova.conf" ] || die "lab not configured: run $LAB/up first"
  [ -f "$ETC/nova/$(csvc "$h").conf" ] || compute_conf "$h"
  start_bg "$(csvc "$h")" "$VENV/bin/nova-compute" --config-file "$ETC/nova/nova-compute.conf" \
    --config-file "$ETC/nova/$(csvc "$h").conf"
}
