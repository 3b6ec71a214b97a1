#!/bin/bash
# tests/lab/fence_compute.sh -- fence_compute under real Pacemaker, on the lab (lab/README.md).
#
# A compute node's pacemaker_remoted is killed; the cluster fences the node through its
# topology level (fence-power, then fence-nova = our fence_compute). Asserts:
#   * stonith_admin --metadata / --list / --validate work with our agent;
#   * Nova (the simulator's request log) received force-down, then disable, for the node's
#     Nova host (compute-N.localdomain), and the service ends forced down and disabled;
#   * the private attribute evacuate of the Nova host survived the purge of the fenced node;
#   * once the value is `no` (set by NovaEvacuate, or by hand here), unfencing cleared
#     forced-down and enabled the service.
#
# usage: tests/lab/fence_compute.sh [compute-N] [--keep]
#   Needs root. Builds the agents (profile quick-release, unless IHA_AGENTS_DIR names a
#   directory of built agents), holds the lab's lock (lab/lib.sh lab_lock) for the whole run,
#   brings the lab up with those agents (`lab/up --agents-dir`, nova-sim from the same
#   directory) and takes it down at the end (--keep: leave it up). A lab already running is
#   used only with IHA_LAB_REUSE=1 and when it has these agents installed; else: skipped.
# Exit 0 = pass, 1 = fail, 77 = skipped.
set -uo pipefail
REPO=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd -P)
LAB=$REPO/lab
# shellcheck source=../../lab/lib.sh
. "$LAB/lib.sh"
set +e
NODE=compute-0; KEEP=0
for a in "$@"; do
    case "$a" in
        --keep) KEEP=1 ;;
        compute-*) NODE=$a ;;
        *) echo "usage: $0 [compute-N] [--keep]" >&2; exit 2 ;;
    esac
done
# Our agents as they are in this tree (a no-op when up to date), built before taking the
# lab's lock so that nobody waits for a compiler.
AGENTS_DIR=${IHA_AGENTS_DIR:-$REPO/target/quick-release}
if [ -z "${IHA_AGENTS_DIR:-}" ] && [ -z "${IHA_LAB_LOCKED:-}" ]; then
    (cd "$REPO" && cargo build --profile quick-release --bins 2>&1 | tail -1)
fi
# One lab per machine: hold its lock (lab/lib.sh) for the whole test.
if declare -F lab_lock >/dev/null; then lab_lock "$0" "$@"; fi
STATE=${IHA_LAB_STATE:-/var/tmp/iha-lab}
NOVA_HOST=$NODE.localdomain
PASS=0; FAIL=0
say()  { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
ok()   { say "ok   $*"; PASS=$((PASS + 1)); }
nok()  { say "FAIL $*"; FAIL=$((FAIL + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else nok "$what"; fi; }
wait_for() { local t=$1; shift; local end=$((SECONDS + t)); until "$@"; do [ $SECONDS -ge "$end" ] && return 1; sleep 0.2; done; }

[ "$(id -u)" = 0 ] || { echo "skipped: needs root"; exit 77; }
[ -x "$AGENTS_DIR/fence_compute" ] || { echo "skipped: no $AGENTS_DIR/fence_compute"; exit 77; }

BROUGHT_UP=0
if crm_mon -1 >/dev/null 2>&1; then
    if [ "${IHA_LAB_REUSE:-0}" != 1 ]; then
        echo "skipped: a lab is already running (not started by this test); IHA_LAB_REUSE=1 uses it"
        exit 77
    fi
    if [ "$(readlink -f /usr/sbin/fence_compute)" != "$(readlink -f "$AGENTS_DIR/fence_compute")" ]; then
        echo "skipped: the running lab has other agents ($(readlink /usr/sbin/fence_compute))"
        exit 77
    fi
    say "using the running lab"
else
    BROUGHT_UP=1
fi
cleanup() {
    if [ "$BROUGHT_UP" = 1 ] && [ "$KEEP" = 0 ]; then "$LAB/down" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT
if [ "$BROUGHT_UP" = 1 ]; then
    say "bringing the lab up with the agents of $AGENTS_DIR"
    IHA_NOVA_SIM=${IHA_NOVA_SIM:-$AGENTS_DIR/nova-sim} "$LAB/up" --agents-dir "$AGENTS_DIR" --computes 2 \
        || { echo "lab/up failed"; exit 1; }
fi
# shellcheck disable=SC1091
. "$STATE/nova.env"

sim() { "$LAB/sim" "$@"; }
started() { crm_mon -1 2>/dev/null | grep -Eq "$1.*Started"; }
remote_online() { crm_mon -1 2>/dev/null | grep -Eq "^  \* RemoteOnline: \[.* $1 .*\]"; }
evacuate_value() { attrd_updater -p -n evacuate -Q -N "$NOVA_HOST" 2>/dev/null | sed -n 's/.*value="\([^"]*\)".*/\1/p'; }

# The host's nova-compute service as the simulator holds it: "state status forced_down uuid".
service() {
    sim get sim/state | python3 -c '
import json, sys
for h in json.load(sys.stdin)["hosts"]:
    if h["name"] == sys.argv[1]:
        print(h["state"], h["status"], str(h["forced_down"]).lower(), h["service_uuid"])' "$NOVA_HOST"
}
# Effects of the Nova requests on the host, in order: force_down=true|false, disabled, enabled.
effects() {
    local uuid; uuid=$(service | awk '{print $4}')
    sim get 'sim/log?service=nova' | python3 -c '
import json, sys
host, uuid = sys.argv[1], sys.argv[2]
for e in json.load(sys.stdin)["entries"]:
    if e["method"] != "PUT" or "/os-services" not in e["path"] or e["status"] >= 400:
        continue
    b = e.get("body") or {}
    if not (e["path"].endswith("/" + uuid) or b.get("host") == host):
        continue
    if "forced_down" in b: print("force_down=%s" % str(b["forced_down"]).lower())
    if e["path"].endswith(("/disable", "/disable-log-reason")) or b.get("status") == "disabled": print("disabled")
    if e["path"].endswith("/enable") or b.get("status") == "enabled": print("enabled")' "$NOVA_HOST" "$uuid" | paste -sd' '
}

say "waiting for fence-nova and $NODE"
check "fence-nova started" wait_for 60 started fence-nova
check "$NODE online" wait_for 60 remote_online "$NODE"
check "$NODE unfenced at start (compute-unfence-trigger runs)" \
    wait_for 60 bash -c "crm_mon -1 2>/dev/null | grep -A3 compute-unfence-trigger | grep -q 'Started'"

# --- stonith_admin
check "stonith_admin --metadata" bash -c "stonith_admin --metadata --agent fence_compute | grep -q 'resource-agent name=\"fence_compute\"'"
check "stonith_admin --list $NODE names fence-nova" bash -c "stonith_admin --list $NODE | grep -q fence-nova"
check "stonith_admin --validate (complete credentials)" \
    stonith_admin --validate --agent fence_compute --option "auth_url=$OS_AUTH_URL" --option login=admin \
        --option "passwd=$OS_PASSWORD" --option tenant_name=admin --option domain=localdomain
check "stonith_admin --validate fails without a password" \
    bash -c "! stonith_admin --validate --agent fence_compute --option auth_url=$OS_AUTH_URL --option login=admin >/dev/null 2>&1"

# --- kill the node
# pacemaker-fenced logs each device's result: count fence-nova's successful "on"s so far.
fence_nova_ons() {
    grep -cE "Operation 'on' \[[0-9]+\] targeting $NODE using fence-nova returned 0" /var/log/pacemaker/pacemaker.log 2>/dev/null || true
}
ONS_BEFORE=$(fence_nova_ons)
sim delete sim/log >/dev/null
say "killing $NODE's pacemaker_remoted"
"$LAB/nodectl" kill "$NODE" >/dev/null
fenced_in_nova() { [[ "$(effects)" == "force_down=true disabled"* ]]; }
check "nova: force-down then disable of $NOVA_HOST" wait_for 60 fenced_in_nova
say "effects so far: $(effects)"
fenced_state=$(service)
check "service forced down and disabled ($fenced_state)" bash -c "[[ '$fenced_state' == 'down disabled true '* ]]"
reason=$(sim get sim/state | python3 -c 'import json,sys; print([h for h in json.load(sys.stdin)["hosts"] if h["name"]==sys.argv[1]][0]["disabled_reason"] or "")' "$NOVA_HOST")
check "disabled reason names the fencing ($reason)" bash -c "[[ '$reason' == 'instance-ha: fenced by fence_compute at '* ]]"
check "fencing of $NODE succeeded" \
    wait_for 30 bash -c "stonith_admin --history=$NODE --verbose 2>/dev/null | grep -Eq '(reboot|turning off|off) of $NODE .*successful'"
value=$(evacuate_value)
check "evacuate=$value for $NOVA_HOST survived the node purge" bash -c "[ -n '$value' ]"

# --- recovery: the value must become `no` before unfencing touches Nova
is_no() { [ "$(evacuate_value)" = no ]; }
if [ "$value" != "no" ]; then
    if ! wait_for 20 is_no; then
        say "no evacuation engine set it: evacuate=no by hand"
        attrd_updater -p -n evacuate -U no -N "$NOVA_HOST"
    fi
fi
check "$NODE back online" wait_for 90 remote_online "$NODE"
unfenced_in_nova() { [[ "$(service)" == *" enabled false "* ]]; }
check "nova: unfencing cleared forced-down and enabled $NOVA_HOST" wait_for 90 unfenced_in_nova
say "effects: $(effects); service: $(service)"
unfenced_by_fence_nova() {
    [ "$(fence_nova_ons)" -gt "$ONS_BEFORE" ]
}
check "unfencing: fence-nova (our fence_compute) ran on for $NODE with rc 0" wait_for 30 unfenced_by_fence_nova
check "evacuate left at no by unfencing" is_no

say "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
