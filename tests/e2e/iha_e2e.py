"""Shared helpers of the end-to-end tier (tests/e2e/run) and the demo (tools/demo).

Python stdlib only. Talks to the lab (lab/README.md): the simulator's control API
(/sim/state, /sim/log, /sim/faults, /sim/servers/bulk, /sim/config), pacemaker.log (attrd
changes of `evacuate`, NovaEvacuate's messages), the fence_labpower log, crm_mon, pcs.
Every wait is bounded and raises Failed with a message saying what it waited for.
"""
import datetime
import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(REPO, "lab")
STATE = os.environ.get("IHA_LAB_STATE", "/var/tmp/iha-lab")
LOGDIR = os.path.join(STATE, "logs")
PCMK_LOG = "/var/log/pacemaker/pacemaker.log"
POWER_LOG = os.path.join(LOGDIR, "fence_labpower.log")
DOMAIN = "localdomain"
EVAC_FLAVOR = "2"                                        # m1.evacuable (lab/scenarios/default.json)
EVAC_IMAGE = "5d2b8f0e-6f5a-4c36-9d0b-3f1f3c9d7e11"      # cirros-evacuable


class Failed(Exception):
    pass


def fqdn(node):
    return node if "." in node else "%s.%s" % (node, DOMAIN)


def short(host):
    return (host or "").split(".", 1)[0]


def read_env(path):
    env = {}
    try:
        for line in open(path):
            k, _, v = line.strip().partition("=")
            if k and not k.startswith("#"):
                env[k.replace("export ", "")] = v.strip("'\"")
    except OSError:
        pass
    return env


def sh(*cmd, check=True, timeout=120, quiet=True):
    """run a command; output captured; raises Failed when check and rc != 0"""
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise Failed("%s: exit %d: %s" % (" ".join(cmd), r.returncode, (r.stderr or r.stdout).strip()[-400:]))
    return r


def wait(what, timeout, pred, interval=0.2):
    """poll pred() until truthy (returned), else raise Failed('timeout after Ns waiting for what')"""
    end = time.time() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except (OSError, ValueError, KeyError, subprocess.SubprocessError) as e:
            last_exc = e
        if time.time() > end:
            raise Failed("timeout after %ds waiting for %s%s" % (timeout, what,
                                                                 " (last error: %s)" % last_exc if last_exc else ""))
        time.sleep(interval)


# ------------------------------------------------------------------ the simulator
class Sim:
    def __init__(self):
        env = read_env(os.path.join(STATE, "nova.env"))
        self.url = env.get("NOVA_SIM_URL") or "http://127.0.0.1:%s" % os.environ.get("IHA_SIM_PORT", "18774")

    def req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        r = urllib.request.Request(self.url + "/" + path.lstrip("/"), data=data, method=method,
                                   headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(r, timeout=10) as resp:
                txt = resp.read().decode()
        except urllib.error.HTTPError as e:
            raise Failed("simulator %s %s: HTTP %s %s" % (method, path, e.code, e.read().decode()[:300]))
        return json.loads(txt) if txt.strip() else None

    def get(self, path):
        return self.req("GET", path)

    def post(self, path, body=None):
        return self.req("POST", path, body if body is not None else {})

    def delete(self, path):
        return self.req("DELETE", path)

    def state(self):
        return self.get("sim/state")

    def host(self, name, st=None):
        st = st or self.state()
        for h in st["hosts"]:
            if h["name"] == name:
                return h
        raise Failed("Nova has no host %s" % name)

    def servers(self, ids=None, st=None):
        st = st or self.state()
        return {s["id"]: s for s in st["servers"] if ids is None or s["id"] in ids}

    def boot(self, host, count, prefix, **extra):
        body = {"host": host, "count": count, "name_prefix": prefix, "flavor": EVAC_FLAVOR, "image": EVAC_IMAGE}
        body.update(extra)
        return self.post("sim/servers/bulk", body)["ids"]

    def log(self, service="nova", since=0):
        return self.get("sim/log?service=%s&since=%d" % (service, since))["entries"]

    def last_seq(self):
        e = self.get("sim/log?since=0")["entries"]
        return max((x["seq"] for x in e), default=0)


# ------------------------------------------------------------------ the cluster
def crm_mon():
    return sh("crm_mon", "-1", check=False, timeout=20).stdout


def nodes_online(nodes, out=None):
    out = out or crm_mon()
    m = re.search(r"RemoteOnline: \[ (.*?) \]", out)
    online = set(m.group(1).split()) if m else set()
    return all(n in online for n in nodes)


def evacuate_value(host):
    r = sh("attrd_updater", "-p", "-n", "evacuate", "-Q", "-N", fqdn(host), check=False, timeout=10)
    m = re.search(r'value="([^"]*)"', r.stdout)
    return m.group(1) if m and m.group(1) else None   # unset: value=""


def log_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_from(path, offset):
    try:
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return ""


def pcmk_time(line):
    try:
        return datetime.datetime.strptime("%d %s" % (datetime.date.today().year, line[:19]),
                                          "%Y %b %d %H:%M:%S.%f").timestamp()
    except ValueError:
        # an agent's own line in pacemaker.log (HA_LOGFILE): "NovaEvacuate(...)[pid]: 2026/11/21_20:42:50 ..."
        ts = re.search(r"(\d{4}/\d\d/\d\d_\d\d:\d\d:\d\d)", line)
        return datetime.datetime.strptime(ts.group(1), "%Y/%m/%d_%H:%M:%S").timestamp() if ts else None


ATTR_RX = re.compile(r"Setting evacuate\[(\S+)\]: (\S+) -> (\S+)")


def attr_changes(text):
    """[(t, host, old, new)] of the evacuate attribute from pacemaker.log text"""
    out = []
    for line in text.splitlines():
        mo = ATTR_RX.search(line)
        if mo:
            t = pcmk_time(line)
            if t is not None:
                out.append((t, mo.group(1), mo.group(2), mo.group(3)))
    return out


def power_events(offset):
    out = []
    for line in read_from(POWER_LOG, offset).splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


# ------------------------------------------------------------------ a failure and its checks
class Run:
    """One scenario's observation window: offsets of every log at the start."""

    def __init__(self, sim):
        self.sim = sim
        self.seq0 = sim.last_seq()
        self.pcmk0 = log_size(PCMK_LOG)
        self.power0 = log_size(POWER_LOG)
        self.t_start = time.time()

    def pcmk_text(self):
        return read_from(PCMK_LOG, self.pcmk0)

    def nova_log(self):
        return [e for e in self.sim.log("nova", self.seq0) if e["seq"] > self.seq0]

    def sample(self, interval=0.2):
        """record every nova-compute heartbeat (last_heartbeat of /sim/state) from now on, in a
        thread; the simulator does not log its control API"""
        import threading
        self.beats = {}
        self.sampling = True

        def loop():
            while self.sampling:
                try:
                    for h in self.sim.state()["hosts"]:
                        self.beats.setdefault(h["name"], set()).add(h["last_heartbeat"])
                except Exception:
                    pass
                time.sleep(interval)
        self.sampler = threading.Thread(target=loop, daemon=True)
        self.sampler.start()

    def stop_sampling(self):
        self.sampling = False

    def heartbeats(self, host):
        out = []
        for v in getattr(self, "beats", {}).get(host, ()):
            try:
                out.append(datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%f").replace(
                    tzinfo=datetime.timezone.utc).timestamp())
            except (ValueError, TypeError):
                pass
        return sorted(t for t in out if t >= self.t_start)

    def attrs(self, host):
        return [(t, old, new) for t, h, old, new in attr_changes(self.pcmk_text()) if h == fqdn(host)]

    def power(self, node):
        return [e for e in power_events(self.power0) if e.get("target") == node]


def service_calls(entries, host, uuid):
    """[(t_start, t_end, effect)] of os-services PUTs for host: force_down=true/false, disabled, enabled"""
    out = []
    for e in entries:
        if e["method"] != "PUT" or "/os-services" not in e["path"] or not (200 <= e["status"] < 300):
            continue
        b = e.get("body") or {}
        if not isinstance(b, dict):
            continue
        p = e["path"].split("?")[0]
        if not (p.endswith("/" + uuid) or b.get("host") == host):
            continue
        t, t1 = e["started"], e.get("finished") or e["started"]
        if "forced_down" in b:
            out.append((t, t1, "force_down=%s" % str(b["forced_down"]).lower()))
        if p.endswith(("/disable", "/disable-log-reason")) or b.get("status") == "disabled":
            out.append((t, t1, "disabled", b.get("disabled_reason")))
        if p.endswith("/enable") or b.get("status") == "enabled":
            out.append((t, t1, "enabled"))
    return out


EVAC_RX = re.compile(r"/servers/([^/]+)/action$")


def evacuate_posts(entries):
    """{server_id: [(t_start, status)]}"""
    out = {}
    for e in entries:
        if e["method"] != "POST":
            continue
        mo = EVAC_RX.search(e["path"].split("?")[0])
        b = e.get("body") or {}
        if mo and isinstance(b, dict) and "evacuate" in b:
            out.setdefault(mo.group(1), []).append((e["started"], e["status"]))
    return out


def check_failover(run, nodes, victims, others=(), expect_accepted=None, unevacuable=(), errors=None):
    """The invariants of a completed failover of `nodes` whose instances were `victims` (ids).

    Returns a list of failure strings (empty = pass):
      * every victim (but `unevacuable`) runs ACTIVE exactly once, on a host that is none of
        `nodes`, with no task; unevacuable ones are still on their host and were never POSTed;
      * one accepted (2xx) evacuate POST per instance (expect_accepted: {id: n} overrides);
      * no evacuate POST for an instance of a node before that node's power off completed
        (fence_labpower log) and before its force-down (Nova log);
      * evacuate of each node went yes -> marker -> no (attrd, pacemaker.log);
      * its unforce / enable only after `no`; the service ends up, enabled, not forced down;
      * `others` (ids of instances on healthy hosts) were never evacuated.
    """
    errs = errors if errors is not None else []
    st = run.sim.state()
    servers = run.sim.servers(None, st)
    log = run.nova_log()
    posts = evacuate_posts(log)
    failed_hosts = {fqdn(n) for n in nodes}
    expect_accepted = expect_accepted or {}
    for sid, origin in victims.items():
        s = servers.get(sid)
        if s is None:
            errs.append("instance %s vanished" % sid)
            continue
        accepted = [p for p in posts.get(sid, []) if 200 <= p[1] < 300]
        if sid in unevacuable:
            if s["host"] != origin:
                errs.append("unevacuable %s moved to %s" % (s["name"], s["host"]))
            if posts.get(sid):
                errs.append("unevacuable %s was POSTed %d times" % (s["name"], len(posts[sid])))
            continue
        if s["host"] in failed_hosts or s["host"] is None:
            errs.append("%s still on %s (%s %s)" % (s["name"], s["host"], s["status"], s["task_state"]))
        elif s["status"] != "ACTIVE" or s["task_state"]:
            errs.append("%s on %s is %s task=%s" % (s["name"], s["host"], s["status"], s["task_state"]))
        # an instance evacuated onto a host that failed too (a cascade) is evacuated once more,
        # from that host: one accepted POST per host it had to leave
        sources = {m.get("source_compute") for m in st.get("migrations", [])
                   if m.get("instance_uuid") == sid and m.get("migration_type") == "evacuation"
                   and m.get("status") not in ("error", "failed")}
        want = expect_accepted.get(sid, 1) + max(0, len(sources) - 1)
        if len(accepted) != want:
            errs.append("%s: %d accepted evacuate POSTs, expected %d (%s)" % (s["name"], len(accepted), want,
                                                                           posts.get(sid)))
    names = [s["name"] for s in servers.values()]
    dup = {n for n in names if names.count(n) > 1 and any(servers[i]["name"] == n for i in victims)}
    if dup:
        errs.append("instances listed twice: %s" % sorted(dup))
    for sid in others:
        if posts.get(sid):
            errs.append("healthy instance %s was evacuated" % servers.get(sid, {}).get("name", sid))
    for n in nodes:
        host = fqdn(n)
        h = run.sim.host(host, st)
        mine = [sid for sid, o in victims.items() if o == host]
        first_post = min((p[0] for sid in mine for p in posts.get(sid, [])), default=None)
        pw = run.power(n)
        off_done = [e["ts"] for e in pw if e.get("event") == "end" and e.get("action") in ("off", "reboot")
                    and e.get("rc") == 0]
        calls = service_calls(log, host, h["service_uuid"])
        fd = [c[1] for c in calls if c[2] == "force_down=true"]
        if not off_done:
            errs.append("%s: no successful power off/reboot recorded" % n)
        if not fd:
            errs.append("%s: Nova never received force-down" % n)
        if first_post is not None:
            if off_done and first_post < min(off_done):
                errs.append("%s: evacuate POST %.3fs before the power off completed" % (n, min(off_done) - first_post))
            if fd and first_post < min(fd):
                errs.append("%s: evacuate POST %.3fs before force-down" % (n, min(fd) - first_post))
        values = [new for _, _, new in run.attrs(n)]
        seq = []
        for v in values:
            k = "yes" if v == "yes" else "no" if v == "no" else "(unset)" if v == "(unset)" else "marker"
            if not seq or seq[-1] != k:
                seq.append(k)
        if "yes" not in seq or "no" not in seq or seq.index("yes") > seq.index("no"):
            errs.append("%s: evacuate went %s, expected yes -> marker -> no" % (n, values))
        elif mine and "marker" not in seq[seq.index("yes"):]:
            errs.append("%s: evacuate went %s: no in-progress marker" % (n, values))
        t_no = [t for t, _, new in run.attrs(n) if new == "no"]
        for c in calls:
            if c[2] in ("force_down=false", "enabled"):
                if not t_no or c[0] < min(t_no) - 0.002:
                    errs.append("%s: %s before evacuate=no" % (n, c[2]))
        if h["state"] != "up" or h["status"] != "enabled" or h["forced_down"]:
            errs.append("%s: service ends %s %s forced_down=%s" % (n, h["state"], h["status"], h["forced_down"]))
    return errs


def settled(sim, nodes, victims, unevacuable=()):
    """every victim settled elsewhere, every node back, its service up/enabled/not forced, evacuate no"""
    st = sim.state()
    srv = sim.servers(victims, st)
    failed = {fqdn(n) for n in nodes}
    for sid in victims:
        s = srv.get(sid)
        if sid in unevacuable:
            continue
        if not s or s["host"] in failed or s["status"] != "ACTIVE" or s["task_state"]:
            return False
    for n in nodes:
        h = sim.host(fqdn(n), st)
        if h["state"] != "up" or h["status"] != "enabled" or h["forced_down"]:
            return False
        if evacuate_value(n) not in (None, "no"):
            return False
    return nodes_online(nodes)


# ------------------------------------------------------------------ real Nova (lab/nova)
class RealNova:
    """a minimal client of the real-Nova tier (lab/nova/README.md, endpoints.json)"""
    MV = "2.53"

    def __init__(self):
        st = os.environ.get("IHA_NOVA_STATE", "/var/tmp/iha-nova")
        self.ep = json.load(open(os.path.join(st, "endpoints.json")))
        self.nova_url = self.ep["compute_url"]
        self.glance_url = self.ep["image_url"]
        self.tok = None

    def token(self, renew=False):
        if self.tok and not renew:
            return self.tok
        ep = self.ep
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": ep["username"], "domain": {"name": ep["user_domain"]}, "password": ep["password"]}}},
            "scope": {"project": {"name": ep["project"], "domain": {"name": ep["project_domain"]}}}}}
        st, hd, b = self.http("POST", ep["auth_url"] + "/auth/tokens", body, auth=False)
        if st != 201:
            raise Failed("keystone token: %s %s" % (st, b))
        self.tok = hd["X-Subject-Token"]
        return self.tok

    def http(self, method, url, body=None, auth=True, headers=None, raw=None):
        h = {"Accept": "application/json", "Content-Type": "application/json"}
        h.update(headers or {})
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        for attempt in range(2):
            if auth:
                h["X-Auth-Token"] = self.token(renew=attempt > 0)
            req = urllib.request.Request(url, data=data, method=method, headers=h)
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    txt = r.read()
                    return r.status, r.headers, (json.loads(txt) if txt else None)
            except urllib.error.HTTPError as e:
                txt = e.read()
                if e.code == 401 and auth and attempt == 0:
                    continue
                try:
                    return e.code, e.headers, json.loads(txt)
                except ValueError:
                    return e.code, e.headers, txt.decode(errors="replace")

    def nova(self, method, path, body=None):
        st, _, b = self.http(method, self.nova_url + path, body,
                             headers={"OpenStack-API-Version": "compute %s" % self.MV})
        return st, b

    def services(self):
        st, b = self.nova("GET", "/os-services?binary=nova-compute")
        if st != 200:
            raise Failed("os-services: %s %s" % (st, b))
        return {s["host"]: s for s in b["services"]}

    def servers(self):
        st, b = self.nova("GET", "/servers/detail?all_tenants=1")
        if st != 200:
            raise Failed("servers: %s %s" % (st, b))
        return b["servers"]

    def sim_like_state(self):
        """the simulator's /sim/state shape, from Nova's API"""
        hosts = [{"name": h, "service_uuid": s["id"], "state": s["state"], "status": s["status"],
                  "forced_down": s.get("forced_down"), "disabled_reason": s.get("disabled_reason")}
                 for h, s in self.services().items()]
        servers = [{"id": s["id"], "name": s["name"], "host": s.get("OS-EXT-SRV-ATTR:host"),
                    "status": s["status"], "task_state": s.get("OS-EXT-STS:task_state")}
                   for s in self.servers()]
        return {"hosts": hosts, "servers": servers}

    def flavor_and_image(self):
        st, _ = self.nova("GET", "/flavors/iha-evacuable")
        if st != 200:
            st, b = self.nova("POST", "/flavors", {"flavor": {"name": "iha-evacuable", "id": "iha-evacuable",
                                                               "ram": 64, "vcpus": 1, "disk": 1}})
            if st != 200:
                raise Failed("flavor create: %s %s" % (st, b))
            st, b = self.nova("POST", "/flavors/iha-evacuable/os-extra_specs", {"extra_specs": {"evacuable": "true"}})
            if st != 200:
                raise Failed("flavor extra spec: %s %s" % (st, b))
        st, _, b = self.http("GET", self.glance_url + "/v2/images?name=iha-evacuable-img&status=active")
        if st != 200:
            raise Failed("image list: %s %s" % (st, b))
        if b["images"]:
            return "iha-evacuable", b["images"][0]["id"]
        st, _, b = self.http("POST", self.glance_url + "/v2/images", {
            "name": "iha-evacuable-img", "disk_format": "raw", "container_format": "bare",
            "visibility": "public", "tags": ["evacuable"]})
        if st != 201:
            raise Failed("image create: %s %s" % (st, b))
        img = b["id"]
        st, _, b = self.http("PUT", self.glance_url + "/v2/images/%s/file" % img, raw=b"\0" * (1 << 20),
                             headers={"Content-Type": "application/octet-stream"})
        if st != 204:
            raise Failed("image upload: %s %s" % (st, b))
        return "iha-evacuable", img

    def boot(self, name, flavor, image, timeout=120, host=None):
        """host: place it there (admin's forced host, availability_zone nova:HOST), not by the scheduler"""
        srv = {"name": name, "imageRef": image, "flavorRef": flavor, "networks": "none"}
        if host:
            srv["availability_zone"] = "nova:%s" % host
        st, b = self.nova("POST", "/servers", {"server": srv})
        if st != 202:
            raise Failed("boot %s: %s %s" % (name, st, b))
        sid = b["server"]["id"]

        def active():
            st, b = self.nova("GET", "/servers/%s" % sid)
            s = b["server"]
            if s["status"] == "ERROR":
                raise Failed("boot %s: ERROR %s" % (name, s.get("fault")))
            return s.get("OS-EXT-SRV-ATTR:host") if s["status"] == "ACTIVE" else None
        return sid, wait("%s ACTIVE" % name, timeout, active, interval=0.5)

    def delete_prefix(self, prefix):
        for s in self.servers():
            if s["name"].startswith(prefix):
                self.nova("DELETE", "/servers/%s" % s["id"])
