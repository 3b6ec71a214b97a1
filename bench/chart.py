#!/usr/bin/python3
"""bench/chart.py RESULTS.json OUT.png -- the makespan chart of a bench/run (matplotlib)."""
import json
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

res = json.load(open(sys.argv[1]))
mk = res["makespan"]
lats = sorted({r["latency_ms"] for r in mk["rows"]})
fig, axes = plt.subplots(1, len(lats), figsize=(6.5 * len(lats), 5), squeeze=False)
for ax, lat in zip(axes[0], lats):
    rows = [r for r in mk["rows"] if r["latency_ms"] == lat]
    series = {}
    for r in rows:
        key = "reference (serial)" if r["side"] == "ref" else "ours, concurrency %d" % r["concurrency"]
        series.setdefault(key, []).append(r)
    for key, rs in sorted(series.items(), key=lambda kv: (kv[0].startswith("ours"), len(kv[0]), kv[0])):
        rs.sort(key=lambda r: r["n"])
        xs = [r["n"] for r in rs]
        med = [r["running_s"]["median"] for r in rs]
        lo = [r["running_s"]["median"] - r["running_s"]["min"] for r in rs]
        hi = [r["running_s"]["max"] - r["running_s"]["median"] for r in rs]
        style = dict(marker="o", linewidth=2.2, color="black") if key.startswith("reference") else dict(marker="o")
        line = ax.errorbar(xs, med, yerr=[lo, hi], capsize=3, label=key, **style)
        if key.startswith("ours"):
            c = rs[0]["concurrency"]
            ax.plot(xs, [r["floor_s"] for r in rs], linestyle=":", color=line[0].get_color(),
                    label="floor, concurrency %d" % c)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("instances on the failed host")
    ax.set_ylabel("seconds until every instance runs elsewhere")
    ax.set_title("%d ms per Nova call, rebuild %d ms" % (lat, mk["rebuild_ms"]))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
# The date of the figures drawn: the latest rerun of the makespan section (bench/merge), else the run's.
measured = [r["date_utc"] for r in res.get("reruns", []) if "makespan" in r.get("sections", [])]
fig.suptitle("Evacuation makespan: instance-ha fence_evacuate vs the reference (median, min-max)  %s"
             % (measured[-1] if measured else res["machine"]["date_utc"]), fontsize=10)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=110)
