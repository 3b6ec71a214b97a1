# lib.sh -- settings and helpers shared by the lab scripts (sourced, not run).
# shellcheck shell=bash disable=SC2034  # settings used by the scripts that source this
#
# LAB:   this folder (found from this file's location, symlinks resolved).
# STATE: every mutable file of the lab (pid files, logs, the unpacked
#        pacemaker-remote, the CIB we built, fence records, Nova credentials).
#        $IHA_LAB_STATE, default /var/tmp/iha-lab.  Never under /run: each
#        simulated compute node mounts a private tmpfs on /run.
LAB=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd -P)
REPO=$(cd "$LAB/.." && pwd -P)
IHA_LAB_STATE_DEFAULT=/var/tmp/iha-lab
STATE=${IHA_LAB_STATE:-$IHA_LAB_STATE_DEFAULT}
case "$STATE" in /run/*|/run) echo "IHA_LAB_STATE must not be under /run" >&2; exit 2 ;; esac
RUN=$STATE/run
LOGDIR=$STATE/logs
REMOTE_ROOT=$STATE/remote-root
REMOTED=$REMOTE_ROOT/usr/sbin/pacemaker-remoted
CLUSTER_NAME=iha-lab
LOCAL_NODE=ctl0
PCMK_LOG=/var/log/pacemaker/pacemaker.log
COROSYNC_LOG=/var/log/cluster/corosync.log
POWER_LOG=$LOGDIR/fence_labpower.log        # one JSON line per fence_labpower call
NOVA_ENV=$STATE/nova.env                    # credentials + URLs of the Nova in use
# the compute nodes of this lab instance: written by `up` (--computes N)
computes() {
    if [ -s "$STATE/computes" ]; then cat "$STATE/computes"
    else echo "compute-0 compute-1"; fi
}
# Nova's name of a Pacemaker compute node (the production FQDN mismatch)
NOVA_DOMAIN=localdomain
nova_host() { echo "$1.$NOVA_DOMAIN"; }

# what systemd would give the daemons: a clean environment
DAEMON_ENV=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
            LANG=C.UTF-8
            "PCMK_logfile=$PCMK_LOG"
            PCMK_logfacility=none)
# the agents the daemons run (fence_labpower) find a non-default state dir
# through the daemons' environment; with the default it is left out
if [ "$STATE" != "$IHA_LAB_STATE_DEFAULT" ]; then
    DAEMON_ENV+=(IHA_LAB_STATE="$STATE")
fi
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

say()   { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
warn()  { say "WARNING: $*" >&2; }
die()   { say "ERROR: $*" >&2; exit 1; }
now()   { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'; }

# pid file names a live, non-zombie process (PID 1 here is not a real init
# and reaps orphans late; a zombie still passes "kill -0")
pid_alive() {
    local st
    [ -n "${1:-}" ] || return 1
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
alive() { [ -s "$1" ] && pid_alive "$(cat "$1")"; }

# stop the process named by a pid file: TERM, wait, KILL; remove the file
stop_pid() {  # pidfile timeout_s
    local pf=$1 t=${2:-30} pid
    alive "$pf" || { rm -f "$pf"; return 0; }
    pid=$(cat "$pf")
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_for "$t" bash -c "! awk '{exit (\$3==\"Z\"||\$3==\"X\")}' /proc/$pid/stat 2>/dev/null"; then
        say "  $(basename "$pf") ($pid) still alive after ${t}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.3
    fi
    rm -f "$pf"
}

# wait_for SECONDS CMD...   (polls every 0.1 s; 0 when CMD succeeded)
wait_for() {
    local t=$1; shift
    local end; end=$(awk -v n="$(now)" -v t="$t" 'BEGIN{printf "%.3f", n+t}')
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        awk -v n="$(now)" -v e="$end" 'BEGIN{exit !(n>e)}' && return 1
        sleep 0.1
    done
}

node_online()   { crm_mon -1 2>/dev/null | grep -Eq "^  \* Online: \[.* $1 .*\]"; }
remote_online() { crm_mon -1 2>/dev/null | grep -Eq "^  \* RemoteOnline: \[.* $1 .*\]"; }

# schema/config check of an offline CIB file: errors fail, warnings (no
# quorum and unclean nodes are normal offline) are ignored
verify_cib() {  # file
    local out tmp
    # the configuration only: a live CIB's status (failed actions) would
    # make the scheduler's complaints about the past look like config errors
    tmp=$(mktemp)
    python3 - "$1" "$tmp" <<'EOF'
import sys, xml.etree.ElementTree as ET
tree = ET.parse(sys.argv[1])
st = tree.getroot().find("status")
if st is not None:
    for c in list(st):
        st.remove(c)
tree.write(sys.argv[2])
EOF
    out=$(crm_verify -V -x "$tmp" 2>&1) && { rm -f "$tmp"; return 0; }
    rm -f "$tmp"
    if echo "$out" | grep -Eiq '(error|invalid|does not conform|schema)'; then
        echo "$out" >&2; return 1
    fi
    return 0
}

# the simulator binary: $IHA_NOVA_SIM, else the first build found
# (release, quick-release, debug); lab/up records the choice in lab.env
find_nova_sim() {
    local b
    for b in ${IHA_NOVA_SIM:-} "$REPO/target/release/nova-sim" \
             "$REPO/target/quick-release/nova-sim" "$REPO/target/debug/nova-sim"; do
        [ -x "$b" ] && { echo "$b"; return 0; }
    done
    echo "${IHA_NOVA_SIM:-$REPO/target/release/nova-sim}"
    return 1
}

# One lab per machine (corosync, /var/lib/pacemaker, the netns names and
# 127.0.0.x:3121 are machine-wide), shared by everybody's tests: up, down,
# configure and selftest run under an exclusive lock; `lab/lock CMD...` holds
# it around a whole test session (up ... checks ... down).  Nested calls see
# IHA_LAB_LOCKED=1 and do not lock again.  flock -o keeps the lock in the
# flock process, so the daemons a script starts never inherit it.
LAB_LOCK=${IHA_LAB_LOCK:-/var/lock/iha-lab.lock}
lab_lock() {  # "$0" "$@" of the calling script
    [ -n "${IHA_LAB_LOCKED:-}" ] && return 0
    export IHA_LAB_LOCKED=1
    mkdir -p "$(dirname "$LAB_LOCK")"
    if ! flock -n "$LAB_LOCK" true; then
        say "the lab is in use (lock $LAB_LOCK); waiting up to ${IHA_LAB_LOCK_WAIT:-1800}s" >&2
    fi
    exec flock -o -w "${IHA_LAB_LOCK_WAIT:-1800}" "$LAB_LOCK" "$@"
}
