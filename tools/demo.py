#!/usr/bin/python3
"""tools/demo.py -- the part of tools/demo that runs on a lab that is up: boot instances,
break a compute node, follow the failover live, summarise, verify. Use tools/demo.

  tools/demo.py [--mode crash|hang|cut|poweroff] [--nova sim|real] [--instances N]
                [--all-on-node] [--node compute-0] [--timeout S] [--json FILE]

Exit 0 when the failover completed (every instance of the node running elsewhere, evacuate
yes -> marker -> no, the node back and unfenced, its Nova service up, enabled and no longer
forced down, none of that and no restart of the gate or of nova-compute on the node before
evacuate=no; with the simulator also every invariant of the end-to-end tier), else 1 with the
reason.
"""
import argparse
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import iha_e2e as L  # noqa: E402

_loader = importlib.machinery.SourceFileLoader("lab_timeline", os.path.join(REPO, "lab", "timeline"))
_spec = importlib.util.spec_from_loader("lab_timeline", _loader)
TL = importlib.util.module_from_spec(_spec)
_loader.exec_module(TL)

MODES = {"crash": ("kill", "pacemaker_remoted killed (daemon crash)"),
         "hang": ("hang", "every process of the node stopped (SIGSTOP): hung host"),
         "cut": ("cut", "network cable cut"),
         "poweroff": ("poweroff", "power cut")}


def out(msg=""):
    print(msg, flush=True)


class Follower(TL.Timeline):
    """lab/timeline's collector, printing only what a person follows"""

    def __init__(self, args, real=None):
        super().__init__(args)
        self.real = real
        if real:
            self.sim = "real-nova"
        self.attr_f = None
        self.evac_posts = 0
        self.shown = set()
        self.rel_of = {}
        self.attr_values = []

    # real Nova: the same state shape from Nova's API; no request log
    def get(self, path):
        if not self.real:
            return super().get(path)
        if path.startswith("/sim/state"):
            return self.real.sim_like_state()
        return {"entries": []}

    def poll_state(self, first=False):
        super().poll_state(first)
        if self.real and self.failed and self.victims and "nova_evacuate" not in self.m:
            # no request log: the first victim seen rebuilding or moved is the first evacuation
            try:
                st = self.real.sim_like_state()
            except Exception:
                return
            for s in st["servers"]:
                if s["id"] in self.victims and ((s.get("task_state") or "").startswith("rebuild")
                                                or TL.short(s.get("host")) != self.node):
                    self.add(time.time(), "nova-state", "nova_evacuate", "Nova evacuating %s" % s["name"])
                    break

    def poll_attr(self):
        if self.attr_f is None:
            try:
                self.attr_f = open(TL.PCMK_LOG, errors="replace")
                self.attr_f.seek(0, 2)
            except OSError:
                return
        for line in self.attr_f.readlines():
            mo = L.ATTR_RX.search(line)
            if mo and TL.short(mo.group(1)) == self.node:
                t = L.pcmk_time(line)
                if t:
                    new = mo.group(3)
                    self.attr_values.append(new)
                    kind = {"yes": "attr_yes", "no": "attr_no"}.get(new, "attr_marker" if new != "(unset)" else "attr_unset")
                    self.add(t, "attrd", kind, "evacuate[%s] = %s" % (mo.group(1), new))
            elif "held by the storm guard" in line:
                t = L.pcmk_time(line)
                if t:
                    self.add(t, "NovaEvacuate", "storm_held", line.split("]", 1)[-1].strip()[:140])

    def add(self, t, source, kind, text, key=None, **extra):
        super().add(t, source, kind, text, key, **extra)
        # the node's own resources after the failure: the gate, then nova-compute behind it
        mo = re.match(r"(\S+?)(?::\d+)? started on (\S+)$", text) if kind == "rsc_started" else None
        if mo and mo.group(2) == self.node and self.t0 is not None and t >= self.t0 \
                and mo.group(1) in ("nova-compute-wait", "nova-compute", "compute-unfence-trigger"):
            k = "started_" + mo.group(1).replace("-", "_")
            if k not in self.m:
                self.m[k] = t
                self.say(t, "%s started on %s%s" % (mo.group(1), self.node, {
                    "nova-compute-wait": " (its evacuation is finished: the gate opens)",
                    "nova-compute": " (behind nova-compute-wait)"}.get(mo.group(1), "")))

    def say(self, t, text):
        out("  %s  %s" % (self.rel(t), text))

    def emit(self, ev):
        k, t, n = ev["kind"], ev["t"], self.node
        first = k not in self.shown
        self.shown.add(k)
        host = "%s.%s" % (n, TL.DOMAIN) if n else "?"
        if k == "node_lost" and first:
            self.say(t, "node %s lost (%s)" % (n, ev["text"].split("(", 1)[-1].rstrip(")")))
        elif k in ("power_off_done", "power_reboot_done") and "fenced_power" not in self.shown:
            self.shown.add("fenced_power")
            self.say(t, "%s powered off by the fence device (fence_labpower %s)" % (n, ev["text"].split(":", 1)[-1].strip()))
        elif k.startswith("power_") and k.endswith("_failed"):
            self.say(t, "power device FAILED: %s (Pacemaker retries)" % ev["text"].split(":", 1)[-1].strip())
        elif k in ("nova_force_down", "service_forced_down_true") and "forced" not in self.shown:
            self.shown.add("forced")
            self.say(t, "Nova: %s forced down (fence_compute)" % host)
        elif k in ("nova_disable", "service_status_disabled") and "disabled" not in self.shown:
            self.shown.add("disabled")
            self.say(t, "Nova: %s disabled" % host)
        elif k == "fence_done" and first:
            self.say(t, "%s fenced: %s" % (n, ev["text"].split(":", 1)[-1].strip()))
        elif k == "attr_yes" and first:
            self.say(t, "%s marked for evacuation (evacuate=yes)" % host)
        elif k == "storm_held" and first:
            self.say(t, "evacuation HELD by the storm guard: %s" % ev["text"])
        elif k == "nova_evacuate":
            self.evac_posts += 1
            if first:
                self.say(t, "evacuation started (NovaEvacuate: first evacuate request to Nova)")
        elif k == "instance_elsewhere":
            sid = ev.get("server")
            name = (self.victims or {}).get(sid, sid)
            mo = re.search(r" (\S+) on (\S+) \((\d+/\d+)\)", ev["text"])
            to = TL.short(mo.group(2)) if mo else "?"
            self.say(t, "instance %-12s running elsewhere: %s -> %s  %s" % (name, n, to, mo.group(3) if mo else ""))
        elif k == "all_instances_elsewhere":
            self.say(t, "every instance of %s runs elsewhere" % n)
        elif k == "attr_no" and first:
            self.say(t, "evacuation of %s complete (evacuate=no)" % host)
        elif k == "node_back" and first:
            self.say(t, "node %s back (cluster member again)" % n)
        elif k == "unfenced" and first:
            self.say(t, "%s unfenced (fence_compute on)" % n)
        elif k in ("nova_unforce", "service_forced_down_false") and "unforced" not in self.shown:
            self.shown.add("unforced")
            self.say(t, "Nova: %s no longer forced down" % host)
        elif k in ("nova_enable", "service_status_enabled") and "enabled" not in self.shown:
            self.shown.add("enabled")
            self.say(t, "Nova: %s service enabled again" % host)
        elif k == "service_state_up" and "up" not in self.shown:
            self.shown.add("up")
            self.say(t, "Nova: nova-compute of %s up (reporting again)" % host)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", default="crash", choices=sorted(MODES))
    ap.add_argument("--nova", default="sim", choices=["sim", "real"])
    ap.add_argument("--instances", type=int, default=6)
    ap.add_argument("--node", default="compute-0")
    ap.add_argument("--all-on-node", action="store_true",
                    help="boot every instance on --node (real Nova: admin's forced host) instead of spreading them")
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--agents", default="ours", choices=["ours", "reference"],
                    help="which agents the lab runs (lab/up --agents reference): recorded in the JSON")
    ap.add_argument("--json", default=os.path.join(L.LOGDIR, "timeline.json"))
    args = ap.parse_args()

    nodes = sorted(open(os.path.join(L.STATE, "computes")).read().split()) \
        if os.path.exists(os.path.join(L.STATE, "computes")) else ["compute-0", "compute-1"]
    node = args.node
    real = L.RealNova() if args.nova == "real" else None
    sim = None if real else L.Sim()
    prefix = "vm%s-" % time.strftime("%H%M")

    # ------------------------------------------------------------ instances
    t = time.time()
    placed = {}
    if real:
        flavor, image = real.flavor_and_image()
        for i in range(args.instances):
            sid, host = real.boot("%s%d" % (prefix, i), flavor, image,
                                  host=L.fqdn(node) if args.all_on_node else None)
            placed[sid] = host
        if not any(L.short(h) == node for h in placed.values()):
            sid, host = None, None
            out("  (the scheduler put none on %s; booting until one lands there)" % node)
            for i in range(args.instances, args.instances + 6):
                sid, host = real.boot("%s%d" % (prefix, i), flavor, image)
                placed[sid] = host
                if L.short(host) == node:
                    break
    else:
        per = {n: 0 for n in nodes}
        for i in range(args.instances):
            per[node if args.all_on_node else nodes[i % len(nodes)]] += 1
        for n, k in per.items():
            if k:
                for sid in sim.boot(L.fqdn(n), k, prefix + "c" + n.split("-")[-1]):
                    placed[sid] = L.fqdn(n)
    spread = {}
    for h in placed.values():
        spread[L.short(h)] = spread.get(L.short(h), 0) + 1
    on_node = [s for s, h in placed.items() if L.short(h) == node]
    out("booted %d instances (evacuable flavor and image) in %.1f s: %s" % (
        len(placed), time.time() - t, ", ".join("%d on %s" % (v, k) for k, v in sorted(spread.items()))))
    if not on_node:
        out("demo: FAILED: no instance runs on %s" % node)
        return 1

    # ------------------------------------------------------------ break the node
    fargs = argparse.Namespace(node=node, t0=None, json=args.json, timeout=args.timeout, until="settled", interval=0.2)
    fl = Follower(fargs, real)
    fl.open_pcmk()
    fl.open_power()
    fl.poll_state(first=True)
    fl.poll_log()
    fl.poll_attr()
    fl.events, fl.seen, fl.m, fl.pending = [], set(), {}, []
    run = L.Run(sim) if sim else None
    verb, what = MODES[args.mode]
    out("")
    out("%s: %s, with %d instance(s) on it; times from the failure:" % (node, what, len(on_node)))
    t0 = time.time()
    r = subprocess.run([os.path.join(L.LAB, "nodectl"), verb, node], capture_output=True, text=True)
    if r.returncode != 0:
        out("demo: FAILED: lab/nodectl %s %s: %s" % (verb, node, r.stderr.strip()))
        return 1
    fl.t0 = t0
    fl.failed = True
    out("  %s  %s" % (fl.rel(t0), "failure injected: lab/nodectl %s %s" % (verb, node)))
    uncut = args.mode != "cut"
    try:
        nc_managed = "NOVA_COMPUTE_MODE=pacemaker" in open(os.path.join(L.STATE, "lab.env")).read().split()
    except OSError:
        nc_managed = False
    reached = False
    while time.time() - t0 < args.timeout:
        fl.poll_pcmk()
        fl.poll_power()
        fl.poll_log()
        fl.poll_state()
        fl.poll_attr()
        if not uncut and any(k in fl.m for k in ("power_off_done", "power_reboot_done")):
            # a reboot does not mend a cable: plug it back once the node is powered off
            subprocess.run([os.path.join(L.LAB, "nodectl"), "uncut", node], capture_output=True)
            out("  %s  (cable of %s plugged back in after the power off)" % (fl.rel(time.time()), node))
            uncut = True
        # complete: Nova settled, evacuate=no, the node unfenced (fence_compute on) and, when
        # Pacemaker runs it, the node's nova-compute started again
        if fl.done("settled") and "attr_no" in fl.m and "unfenced" in fl.m \
                and (not nc_managed or "started_nova_compute" in fl.m):
            reached = True
            break
        time.sleep(0.2)
    if reached:
        fl.add(time.time(), "timeline", "settled", "condition 'settled' reached")
    doc = fl.summary()
    doc.update(reached=reached, until="settled", mode=args.mode, nova=args.nova, t0_source="injection", agents=args.agents,
               evacuate_requests=fl.evac_posts, evacuate_values=fl.attr_values,
               instances_placed={sid: h for sid, h in placed.items()})
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(args.json + ".tmp", args.json)

    m = doc["milestones"]

    def at(*kinds):
        v = [m[k] for k in kinds if k in m]
        return "%7.2f s" % min(v) if v else "      - "
    out("")
    out("summary (%s, Nova %s, %d instance(s) on %s%s):" % (args.mode, args.nova, len(on_node), node,
                                                          ", REFERENCE agents" if args.agents == "reference" else ""))
    out("  node lost                           %s" % at("node_lost"))
    out("  powered off                         %s" % at("power_off_done", "power_reboot_done"))
    out("  fenced (power + fence_compute)      %s" % at("fence_done"))
    out("  first evacuation issued             %s" % at("nova_evacuate"))
    out("  every instance running elsewhere    %s" % at("all_instances_elsewhere"))
    out("  node back                           %s" % at("node_back"))
    out("  unfenced (fence_compute on)         %s" % at("unfenced"))
    out("  nova-compute started again          %s" % at("started_nova_compute"))
    out("  no longer forced down               %s" % at("nova_unforce", "service_forced_down_false"))
    out("  service re-enabled                  %s" % at("nova_enable", "service_status_enabled"))
    out("  failover complete (settled)         %s" % at("settled"))

    problems = []
    if not reached:
        missing = []
        if "node_back" not in m:
            missing.append("node not back")
        if len(fl.settled) != len(fl.victims or {}):
            missing.append("%d of %d instances still not running elsewhere" % (
                len(fl.victims or {}) - len(fl.settled), len(fl.victims or {})))
        if fl.service and (fl.service.get("forced_down") or str(fl.service.get("status")) != "enabled"):
            missing.append("Nova service %s, forced_down=%s" % (fl.service.get("status"), fl.service.get("forced_down")))
        if "attr_no" not in m:
            missing.append("evacuate never became no (values seen: %s)" % fl.attr_values)
        if "unfenced" not in m:
            missing.append("%s never unfenced (fence_compute on)" % node)
        if nc_managed and "started_nova_compute" not in m:
            missing.append("Pacemaker never started nova-compute on %s again" % node)
        problems.append("failover did not complete within %.0f s: %s" % (args.timeout, "; ".join(missing) or "?"))
    else:
        seq = []
        for v in fl.attr_values:
            k = v if v in ("yes", "no", "(unset)") else "marker"
            if not seq or seq[-1] != k:
                seq.append(k)
        if "yes" not in seq or "no" not in seq[seq.index("yes"):] or "marker" not in seq[seq.index("yes"):]:
            problems.append("evacuate of %s went %s, expected yes -> marker -> no" % (node, fl.attr_values))
        # nothing gives the host back before its evacuation is finished: not the service, not
        # unfencing, not the gate, and nova-compute does not run on it again before that
        for k in ("nova_unforce", "service_forced_down_false", "nova_enable", "service_status_enabled",
                  "unfenced", "started_nova_compute_wait", "started_nova_compute"):
            if k in fl.m and "attr_no" in fl.m and fl.m[k] < fl.m["attr_no"] - 0.002:
                problems.append("%s before evacuate=no" % k)
    if reached and run:
        problems += L.check_failover(run, [node], {s: h for s, h in placed.items() if L.short(h) == node},
                                     [s for s, h in placed.items() if L.short(h) != node])
    print("\ntimeline JSON: %s" % args.json, flush=True)
    if problems:
        out("demo: FAILED: " + problems[0])
        for p in problems[1:5]:
            out("   " + p)
        return 1
    out("demo: failover complete" + (" (every invariant of the e2e tier checked)" if run else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
