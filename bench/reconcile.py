#!/usr/bin/env python3
"""The issue 6 benchmarks (`make bench-reconcile`, through bench/reconcile.sh): the polling
reconciler against 100k simulated devices. See bench/README.md, section bench-reconcile.

  reconcile.py --gateway build/plain/mdmgw --responder build/plain/bench/coa_responder --out DIR

Env: DEVICES (100000, split between the SCCM and the cloud MDM simulator), SHARE (0.1, the
non-compliant share), SEED (1), CYCLES (3), POLLS (20), FLIPS (20, split between the two),
CACHE_MAX_ENTRIES (unset: the gateway's default; set, cache.max_entries of both gateways).

Every figure printed is measured in this run; a part the gateway under test does not offer (its
config refuses the section, or its admin route answers 404) is named as not measured and the
script exits 1.
"""
import argparse
import base64
import http.client
import json
import os
import re
import secrets
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIM = os.path.join(ROOT, "tests", "sim")
CERTS = os.path.join(ROOT, "certs")
ADMIN = "demo-admin:mdmgw-admin"
QUERY = "demo:mdmgw-demo"
SCCM_USER = "CORP\\svc-bench"
MDM_USER = "ise-bench"
POLL = "/ciscoise/mdmapi/v3/devices/?querycriteria=compliance&value=false&paging=%s"
TICK = os.sysconf("SC_CLK_TCK")


def env_int(name, default):
    v = os.environ.get(name, "")
    return int(v) if v.strip() else default


class Missing(Exception):
    """A part of the benchmark the gateway under test does not offer."""


class Run:
    def __init__(self, args):
        self.a = args
        self.out = args.out
        self.procs = []  # (name, Popen), stopped in reverse order at the end
        self.missing = []  # (part, why)
        self.lines = []  # the summary, as printed
        self.env = dict(os.environ)
        self.env["MDMGW_BENCH_SCCM_PW"] = secrets.token_urlsafe(18)
        self.env["MDMGW_BENCH_MDM_PW"] = secrets.token_urlsafe(18)
        self.env["MDMGW_BENCH_NAS_SECRET"] = secrets.token_urlsafe(18)
        self.ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
        self.sim_certs = os.path.join(self.out, "simcerts")

    # -- output

    def say(self, line):
        print(line, flush=True)
        self.lines.append(line)

    def note(self, line):
        """Progress, on stderr only."""
        sys.stderr.write("reconcile: %s\n" % line)
        sys.stderr.flush()

    # -- processes

    def start(self, name, cmd, ready=True):
        log = open(os.path.join(self.out, name + ".log"), "w")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE if ready else log, stderr=log,
                             env=self.env, text=True, cwd=ROOT)
        self.procs.append((name, p))
        if not ready:
            return p, None
        line = p.stdout.readline()
        m = re.match(r"READY (\d+)", line or "")
        if not m:
            raise RuntimeError("%s did not start (see %s.log): %r" % (name, name, line))
        return p, int(m.group(1))

    def stop(self, p, timeout=20):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self):
        for _, p in reversed(list(self.procs)):
            self.stop(p)

    def sims(self, tag, n_sccm, n_mdm):
        share, seed = str(self.a.share), str(self.a.seed)
        common = ["--port", "0", "--cert", os.path.join(self.sim_certs, "server.pem"),
                  "--key", os.path.join(self.sim_certs, "server-key.pem"),
                  "--seed", seed, "--noncompliant-share", share]
        sccm, sp = self.start(tag + "-sccm-sim", [
            sys.executable, os.path.join(SIM, "sccm_sim.py"), "--generate", str(n_sccm),
            "--user", SCCM_USER, "--password", self.env["MDMGW_BENCH_SCCM_PW"],
            "--auth", "basic"] + common)
        mdm, mp = self.start(tag + "-mdm-sim", [
            sys.executable, os.path.join(SIM, "mdm_sim.py"), "--generate", str(n_mdm),
            "--user", MDM_USER, "--password", self.env["MDMGW_BENCH_MDM_PW"]] + common)
        return (sccm, sp), (mdm, mp)

    # -- the gateway

    def config(self, name, sccm_port, mdm_port, nas_port, drop=()):
        with open(os.path.join(ROOT, "conf", "demo.json")) as f:
            cfg = json.load(f)
        ca = os.path.join(self.sim_certs, "ca.pem")
        cfg["listen"].update({"port": free_port(), "threads": 2,
                              "cert_file": os.path.join(CERTS, "server.pem"),
                              "key_file": os.path.join(CERTS, "server-key.pem")})
        cfg["api"]["query_max_size"] = 5000
        cfg["adapters"] = [
            {"name": "sccm", "type": "sccm", "url": "https://127.0.0.1:%d/AdminService" % sccm_port,
             "ca_file": ca, "auth": "basic", "user": SCCM_USER,
             "password": {"env": "MDMGW_BENCH_SCCM_PW"}, "breaker_failures": 0},
            {"name": "cloud", "type": "mcms", "url": "https://127.0.0.1:%d" % mdm_port,
             "ca_file": ca, "user": MDM_USER, "password": {"env": "MDMGW_BENCH_MDM_PW"},
             "breaker_failures": 0}]
        if os.environ.get("CACHE_MAX_ENTRIES"):  # to tell the snapshot's memory from the cache's
            cfg.setdefault("cache", {})["max_entries"] = int(os.environ["CACHE_MAX_ENTRIES"])
        cfg["state_dir"] = os.path.join(self.out, name + "-state")
        cfg["log_level"] = "info"
        cfg["reconciler"] = {"interval": "0"}
        cfg["nas"] = [{"address": "127.0.0.1", "port": nas_port,
                       "secret": {"env": "MDMGW_BENCH_NAS_SECRET"},
                       "require_message_authenticator": True}]
        for k in drop:
            cfg.pop(k, None)
        path = os.path.join(self.out, name + ".json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        os.chmod(path, 0o600)
        return cfg, path

    def checked_config(self, name, *ports):
        """A configuration the gateway accepts: sections it refuses (not built yet) are dropped
        and remembered as missing parts."""
        drop = []
        for _ in range(3):
            cfg, path = self.config(name, *ports, drop=drop)
            r = subprocess.run([self.a.gateway, "check-config", "-c", path], env=self.env,
                               capture_output=True, text=True)
            with open(os.path.join(self.out, name + "-check-config.log"), "w") as f:
                f.write(r.stdout + r.stderr)
            if r.returncode == 0:
                return cfg, path, drop
            msg = r.stdout + r.stderr
            refused = [k for k in ("reconciler", "nas") if k not in drop and
                       re.search(r"\b%s\b" % k, msg)]
            if not refused:
                raise RuntimeError("config %s refused: %s" % (path, msg.strip()))
            drop += refused
        raise RuntimeError("config %s refused: %s" % (path, msg.strip()))

    def gateway(self, name, cfg, path):
        p, _ = self.start(name, [self.a.gateway, "run", "-c", path], ready=False)
        port = cfg["listen"]["port"]
        t0 = time.time()
        while time.time() - t0 < self.a.start_timeout:
            if p.poll() is not None:
                raise RuntimeError("gateway %s exited with %s (see %s.log)"
                                   % (name, p.returncode, name))
            try:
                if self.req(port, "GET", "/healthz", None, timeout=5)[0] == 200:
                    return p, port, time.time() - t0
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway %s: no /healthz after %d s" % (name, self.a.start_timeout))

    def req(self, port, method, target, user=ADMIN, body=None, timeout=60, conn=None):
        c = conn or http.client.HTTPSConnection("127.0.0.1", port, context=self.ctx,
                                                timeout=timeout)
        h = {}
        if user:
            h["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        if body is not None:
            body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        try:
            c.request(method, target, body=body, headers=h)
            r = c.getresponse()
            return r.status, r.read()
        finally:
            if conn is None:
                c.close()

    def status(self, port):
        st, body = self.req(port, "GET", "/api/v1/reconciler")
        if st == 404:
            raise Missing("GET /api/v1/reconciler answers 404")
        if st != 200:
            raise RuntimeError("GET /api/v1/reconciler: %d %s" % (st, body[:200]))
        return json.loads(body)

    def wait_idle(self, port, after_cycles, timeout=600):
        """The status once more than after_cycles cycles have run and none is running."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            s = self.status(port)
            if s.get("cycles", s.get("generation", 0)) > after_cycles and not s.get("running"):
                return s
            time.sleep(0.05)
        raise RuntimeError("no reconciler cycle finished within %d s" % timeout)

    def cycle(self, port, pid):
        """One cycle run through the admin API: (status after, process CPU s, script wall s)."""
        before = self.status(port)
        n = before.get("cycles", before.get("generation", 0))
        cpu0, t0 = cpu_s(pid), time.time()
        st, body = self.req(port, "POST", "/api/v1/reconciler/run", body={})
        if st == 404:
            raise Missing("POST /api/v1/reconciler/run answers 404")
        if st not in (200, 202):
            raise RuntimeError("POST /api/v1/reconciler/run: %d %s" % (st, body[:200]))
        after = self.wait_idle(port, n)
        return after, cpu_s(pid) - cpu0, time.time() - t0

    # -- the parts

    def rss_empty(self, nas_port):
        """RSS of a gateway whose adapters list nothing, after the same cycles as the big one."""
        (_, sp), (_, mp) = self.sims("empty", 0, 0)
        cfg, path, drop = self.checked_config("gw-empty", sp, mp, nas_port)
        p, port, _ = self.gateway("gw-empty", cfg, path)
        if "reconciler" not in drop:
            try:
                self.wait_idle(port, 0)
                for _ in range(self.a.cycles):
                    self.cycle(port, p.pid)
            except Missing:
                pass  # found out again, and reported, on the big gateway
        rss = rss_kb(p.pid)
        self.stop(p)
        for name, q in list(self.procs):
            if name.startswith("empty-"):
                self.stop(q)
        return rss

    def cycles(self, port, pid):
        walls, cpus, api_walls, api_cpus = [], [], [], []
        last = None
        self.wait_idle(port, 0)  # the cycle run at start
        for i in range(self.a.cycles):
            last, cpu, wall = self.cycle(port, pid)
            lc = last.get("last_cycle") or {}
            walls.append(wall)
            cpus.append(cpu)
            api_walls.append(lc.get("wall_ms", 0) / 1000.0)
            api_cpus.append(lc.get("cpu_ms", 0) / 1000.0)
            self.note("cycle %d: %.2f s wall (script), %.2f s gateway CPU, last_cycle %s"
                      % (i + 1, wall, cpu, json.dumps({k: lc.get(k) for k in (
                          "generation", "wall_ms", "cpu_ms", "devices", "noncompliant",
                          "complete")})))
            if not lc.get("complete", False):
                raise RuntimeError("cycle %d incomplete: %s" % (i + 1, json.dumps(lc)))
        with open(os.path.join(self.out, "reconciler-status.json"), "w") as f:
            json.dump(last, f, indent=1)
        return walls, cpus, api_walls, api_cpus, last

    def poll_pages(self, port):
        """POLLS requests of the first 5000-device page of the non-compliant poll on one
        keep-alive connection with curl (time_total each; one request before them opens the
        connection). Returns the times in ms; checks every answer is 200 with 5000 devices."""
        url = "https://127.0.0.1:%d%s" % (port, POLL % "0")
        cfgp = os.path.join(self.out, "poll-curl.conf")
        with open(cfgp, "w") as f:
            f.write('user = "%s"\n' % QUERY)
            for i in range(self.a.polls + 1):
                f.write('url = "%s"\noutput = "%s"\n'
                        % (url, os.path.join(self.out, "poll-%02d.xml" % i)))
        r = subprocess.run(["curl", "-sS", "--cacert", os.path.join(CERTS, "ca.pem"),
                            "-K", cfgp, "-w",
                            "%{http_code} %{time_total} %{size_download} %{num_connects}\\n"],
                           capture_output=True, text=True)
        with open(os.path.join(self.out, "poll-times.txt"), "w") as f:
            f.write(r.stdout + r.stderr)
        rows = [ln.split() for ln in r.stdout.splitlines() if ln.strip()]
        if r.returncode != 0 or len(rows) != self.a.polls + 1:
            raise RuntimeError("curl failed: %s" % r.stderr.strip())
        times = []
        for i, (code, total, size, connects) in enumerate(rows):
            if code != "200":
                raise RuntimeError("poll page %d: HTTP %s (see poll-%02d.xml)" % (i, code, i))
            with open(os.path.join(self.out, "poll-%02d.xml" % i), "rb") as f:
                ndev = f.read().count(b"<device>")
            if ndev != 5000:
                raise RuntimeError("poll page %d: %d devices, not 5000 (are there 5000 "
                                   "non-compliant devices?)" % (i, ndev))
            if i > 0:
                if connects != "0":
                    raise RuntimeError("poll page %d did not reuse the connection" % i)
                times.append(float(total) * 1000.0)
        return times, int(rows[1][2])

    def poll_walk(self, port):
        """The whole non-compliant poll, page by page: how many devices it lists."""
        c = http.client.HTTPSConnection("127.0.0.1", port, context=self.ctx, timeout=120)
        cur, n, pages = "0", 0, 0
        while True:
            st, body = self.req(port, "GET", POLL % cur, user=QUERY, conn=c)
            if st != 200:
                raise RuntimeError("poll walk page %d: HTTP %d" % (pages, st))
            n += body.count(b"<device>")
            pages += 1
            m = re.search(rb"<paging_info>([^<]*)</paging_info>", body)
            cur = m.group(1).decode() if m else "0"
            if cur in ("", "0") or pages > 1000:
                c.close()
                return n, pages

    def coa(self, port, pid, sims, resp_file):
        """FLIPS devices flipped to non-compliant, a session put for each, one cycle: the time
        from last_cycle.last_page_ms to each device's first CoA packet at the responder."""
        macs = []
        sim_ctx = ssl.create_default_context(cafile=os.path.join(self.sim_certs, "ca.pem"))
        for (sim, sport), share in zip(sims, (self.a.flips // 2, self.a.flips - self.a.flips // 2)):
            macs += [d["mac"] for d in sim_post(sim_ctx, sport, "/_sim/flip",
                                                {"count": share, "compliant": False})["flipped"]]
        with open(os.path.join(self.out, "flipped.txt"), "w") as f:
            f.write("\n".join(macs) + "\n")
        for i, mac in enumerate(macs):
            st, body = self.req(port, "PUT", "/api/v1/sessions/%s" % mac, body={
                "nas_ip": "127.0.0.1", "acct_session_id": "bench-%04d" % i,
                "user_name": "bench-user-%04d" % i, "nas_port": 10000 + i})
            if st == 404:
                raise Missing("PUT /api/v1/sessions/{mac} answers 404")
            if st not in (200, 201, 204):
                raise RuntimeError("PUT /api/v1/sessions/%s: %d %s" % (mac, st, body[:200]))
        after, _, _ = self.cycle(port, pid)
        lc = after.get("last_cycle") or {}
        last_page = lc.get("last_page_ms")
        if not last_page:
            raise Missing("last_cycle.last_page_ms absent from GET /api/v1/reconciler")
        want = set(macs)
        t0 = time.time()
        got = {}
        while time.time() - t0 < self.a.coa_wait and len(got) < len(want):
            got = first_arrivals(resp_file, want)
            time.sleep(0.05)
        if len(got) < len(want):
            raise RuntimeError("CoA reached the responder for %d of %d flipped devices within "
                               "%d s (missing: %s)" % (len(got), len(want), self.a.coa_wait,
                                                        " ".join(sorted(want - set(got)))))
        lat = [got[m] - last_page for m in macs]
        with open(os.path.join(self.out, "coa-latency.txt"), "w") as f:
            f.write("last_page_ms %d\n" % last_page)
            for m in macs:
                f.write("%s %d\n" % (m, got[m] - last_page))
        return lat

    # -- the whole run

    def run(self):
        a = self.a
        r = subprocess.run(["bash", os.path.join(SIM, "make_certs.sh"), self.sim_certs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("make_certs.sh: " + r.stderr)
        resp_file = os.path.join(self.out, "coa-received.txt")
        _, nas_port = self.start("coa-responder", [a.responder, "--port", "0", "--secret",
                                                   self.env["MDMGW_BENCH_NAS_SECRET"],
                                                   "--out", resp_file])
        self.note("RSS with 0 devices...")
        rss0 = self.rss_empty(nas_port)
        n_sccm = a.devices // 2
        n_mdm = a.devices - n_sccm
        t0 = time.time()
        sims = self.sims("big", n_sccm, n_mdm)
        self.note("simulators: %d SCCM + %d cloud devices, started in %.1f s"
                  % (n_sccm, n_mdm, time.time() - t0))
        cfg, path, drop = self.checked_config("gw", sims[0][1], sims[1][1], nas_port)
        for k in drop:
            self.missing.append((k, "the gateway's configuration refuses the %r section" % k))
        p, port, ready_s = self.gateway("gw", cfg, path)
        self.say("devices %d (sccm %d, cloud %d), non-compliant share %s"
                 % (a.devices, n_sccm, n_mdm, a.share))
        self.say("gateway ready s %.1f, cpu at ready s %.2f" % (ready_s, cpu_s(p.pid)))
        res = {}
        if "reconciler" not in drop:
            try:
                walls, cpus, api_walls, api_cpus, last = self.cycles(port, p.pid)
                res["wall"], res["cpu"] = statistics.median(walls), statistics.median(cpus)
                lc = last.get("last_cycle") or {}
                ndev = lc.get("devices") or a.devices
                rss = rss_kb(p.pid)
                res["rss"] = (rss - rss0) * 1024.0 / ndev
                self.say("cycles %d: wall s %s, gateway cpu s %s (reconciler thread cpu s %s, "
                         "wall s %s)" % (a.cycles, fmt_list(walls), fmt_list(cpus),
                                         fmt_list(api_cpus), fmt_list(api_walls)))
                self.say("rss kB 0 devices %d, %d devices after %d cycles %d"
                         % (rss0, ndev, a.cycles, rss))
                self.heap_breakdown(port, ndev)
            except Missing as e:
                self.missing.append(("reconciler", str(e)))
        if "reconciler" in dict(self.missing):
            # today's gateway: the snapshot built at start; its memory, as information only
            rss = rss_kb(p.pid)
            self.say("start-up snapshot (no reconciler): rss kB 0 devices %d, %d devices %d, "
                     "%.0f bytes a device (not after %d cycles: not the figure asked for)"
                     % (rss0, a.devices, rss, (rss - rss0) * 1024.0 / a.devices, a.cycles))
        n, pages = self.poll_walk(port)
        self.say("non-compliant poll: %d devices in %d pages" % (n, pages))
        times, size = self.poll_pages(port)
        res["poll"] = statistics.median(times)
        self.say("poll page (5000 devices, %d bytes, %d requests on one keep-alive connection, "
                 "curl time_total): median ms %.1f, min %.1f, max %.1f"
                 % (size, len(times), res["poll"], min(times), max(times)))
        if "reconciler" not in dict(self.missing) and "nas" not in drop:
            try:
                lat = self.coa(port, p.pid, sims, resp_file)
                res["coa"], res["coa_max"] = statistics.median(lat), max(lat)
            except Missing as e:
                self.missing.append(("coa", str(e)))
        elif "coa" not in dict(self.missing):
            self.missing.append(("coa", "needs the reconciler and the \"nas\" list"))
        self.stop(p)
        return self.finish(res)

    def heap_breakdown(self, port, ndev):
        """Where the memory is, by the gateway's own gauges (information, not a figure)."""
        st, body = self.req(port, "GET", "/metrics")
        if st != 200:
            return
        got = {}
        for line in body.decode("utf-8", "replace").splitlines():
            for name in ("mdmgw_snapshot_bytes", "mdmgw_trans_bytes"):
                if line.startswith(name + " "):
                    got[name] = float(line.split()[1])
        if got:
            self.say("heap bytes per device: " + ", ".join(
                "%s %.0f" % (k[len("mdmgw_"):-len("_bytes")], v / ndev)
                for k, v in sorted(got.items())))

    def finish(self, res):
        if "wall" in res:
            self.say("cycle wall s %.2f" % res["wall"])
        if "coa_max" in res:
            self.say("coa max ms %d" % res["coa_max"])
        if "cpu" in res:
            self.say("cycle cpu s %.2f" % res["cpu"])
        if "rss" in res:
            self.say("rss per device bytes %.0f" % res["rss"])
        self.say("poll page ms %.1f" % res["poll"])
        if "coa" in res:
            self.say("coa ms %d" % res["coa"])
        for part, why in self.missing:
            self.say("not measured: %s: %s" % (part, why))
        with open(os.path.join(self.out, "summary.txt"), "w") as f:
            f.write("\n".join(self.lines) + "\n")
        if self.missing:
            sys.stderr.write("reconcile: %d part(s) could not be measured on this gateway "
                             "(above); no figure was printed for them\n" % len(self.missing))
            return 1
        return 0


# --- helpers ---------------------------------------------------------------------------------

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_s(pid):
    """utime + stime of the process, in seconds (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / float(TICK)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def sim_post(ctx, port, path, body):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    try:
        c.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        if r.status != 200:
            raise RuntimeError("simulator %s: %d %s" % (path, r.status, data[:200]))
        return json.loads(data)
    finally:
        c.close()


def norm_mac(s):
    t = re.sub(r"[^0-9A-Fa-f]", "", s or "").upper()
    return t if len(t) == 12 else None


def first_arrivals(path, want):
    """MAC -> ms of the first answered CoA or Disconnect request the responder logged for it."""
    got = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 5 or parts[4] not in ("ack", "no-ma-ack", "nak"):
                    continue
                mac = norm_mac(parts[3])
                if mac in want and mac not in got:
                    got[mac] = int(parts[0])
    except FileNotFoundError:
        pass
    return got


def fmt_list(v):
    return " ".join("%.2f" % x for x in v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gateway", required=True)
    ap.add_argument("--responder", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--start-timeout", type=int, default=600)
    ap.add_argument("--coa-wait", type=int, default=10)
    args = ap.parse_args()
    args.devices = env_int("DEVICES", 100000)
    args.share = float(os.environ.get("SHARE") or 0.1)
    args.seed = env_int("SEED", 1)
    args.cycles = env_int("CYCLES", 3)
    args.polls = env_int("POLLS", 20)
    args.flips = env_int("FLIPS", 20)
    if args.devices < 2 or args.cycles < 1 or args.polls < 1 or args.flips < 1:
        ap.error("DEVICES >= 2, CYCLES, POLLS and FLIPS >= 1")
    run = Run(args)
    try:
        return run.run()
    except RuntimeError as e:
        sys.stderr.write("reconcile: %s\n" % e)
        return 2
    finally:
        run.stop_all()


if __name__ == "__main__":
    sys.exit(main())
