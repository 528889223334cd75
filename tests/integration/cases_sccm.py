"""Integration cases for the SCCM adapter: the real gateway binary against the SCCM AdminService
simulator (tests/sim/sccm_sim.py), a separate process speaking HTTPS with its own test CA.

Golden answers are in tests/data/golden-sccm (same format as tests/data/golden): one ISE API
request per case of the simulator's data set, and the exact XML the gateway must answer.
"""
import glob
import os
import re
import signal
import subprocess
import threading
import time
import xml.etree.ElementTree as ET

from lib import ROOT, SIM_PASSWORD, SccmSim, SilentServer, free_port

GOLDEN_SCCM = os.path.join(ROOT, "tests", "data", "golden-sccm")
Q = "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress&value=%s&filter=all"


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _sccm_gateway(env, sim, adapter=None, api=None, cache=None, listen=None, **adapter_extra):
    """A gateway whose one adapter is the simulator (no inventory: every answer is SCCM's)."""
    ad = adapter or sim.adapter(breaker_failures=0, **adapter_extra)
    # These cases test the live lookup path (cold misses, faults, breaker, dogpile): the
    # reconciler's write-through would answer them from its listing instead.
    over = {"adapters": [ad], "reconciler": {"write_through": False},
            "api": dict({"lookup_timeout": "5s" if env.valgrind else "3s"}, **(api or {}))}
    if cache:
        over["cache"] = cache
    # Under valgrind a hundred TLS handshakes at once outlast the suite's 2 s header deadline.
    over["listen"] = dict({"header_timeout": "30s"} if env.valgrind else {}, **(listen or {}))
    return env.gateway(overrides=over, name="sccm")


def _devices(r):
    root = ET.fromstring(r.body)
    return root.findall("./deviceList/device")


def _test_connection_cli(env, gw, name="sccm"):
    """`mdmgw test-connection` on the gateway's own config: (exit code, output)."""
    r = subprocess.run([env.binary, "test-connection", "-c", gw.config_path, name],
                       capture_output=True, timeout=120)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def _test_connection_api(gw, name="sccm"):
    r = gw.request("POST", "/api/v1/adapters/%s/test" % name, user="boss", body=b"")
    import json
    return r.status, json.loads(r.body)


def case_sccm_golden_answers(env):
    """One golden ISE answer per case of the simulator's data set (registered or not, each
    compliance state, no baselines, no client summary, several NICs, a MAC only in
    NETWORK_ADAPTER, obsolete duplicates, both datetime forms), asked over TLS with NTLM."""
    sim = SccmSim(auth="ntlm")
    gw = None
    try:
        gw = _sccm_gateway(env, sim, adapter=sim.adapter(auth="ntlm", breaker_failures=0))
        gw.start()
        reqs = sorted(glob.glob(os.path.join(GOLDEN_SCCM, "*.req")))
        _check(len(reqs) >= 12, "expected the SCCM golden set, found %d" % len(reqs))
        from cases import parse_req, parse_res
        bad = []
        for req in reqs:
            name = os.path.basename(req)[:-4]
            method, target, headers, account, body = parse_req(req)
            r = gw.request(method, target, user=account, body=body, headers=headers)
            res = req[:-4] + ".res"
            if env.regen:
                with open(res, "wb") as f:
                    f.write(("%d\nContent-Type: %s\n\n" % (r.status, r.header("Content-Type")))
                            .encode() + r.body)
                continue
            status, want_headers, want_body = parse_res(res)
            if r.status != status or r.body != want_body:
                bad.append("%s: %d, want %d:\n--- got\n%s\n--- want\n%s" % (
                    name, r.status, status, r.text, want_body.decode()))
        _check(not bad, "\n".join(bad))
        # NTLM really ran: the simulator answered 401 challenges and then 200s
        st = sim.counts()["by_status"]
        _check(st.get("401", 0) >= 1 and st.get("200", 0) >= len(reqs), "statuses %r" % st)
    finally:
        if gw:
            rc = gw.stop()
            gw.cleanup()
            _check(rc == 0, "gateway exit %s" % rc)
        sim.stop()


def case_sccm_basic_and_wrong_password(env):
    """Basic authenticates; a wrong password is a 503 (never "not registered") and the
    connection test says 401 with what to fix."""
    sim = SccmSim(auth="basic")
    gws = []
    try:
        good = _sccm_gateway(env, sim).start()
        gws.append(good)
        r = good.request("GET", Q % "005056A10001")
        _check(r.status == 200 and len(_devices(r)) == 1, "basic: %d %s" % (r.status, r.text))
        bad = _sccm_gateway(env, sim, adapter=sim.adapter(password="wrong-password",
                                                          breaker_failures=0)).start()
        gws.append(bad)
        r = bad.request("GET", Q % "005056A10002")
        _check(r.status == 503, "wrong password: %d %s" % (r.status, r.text))
        rc, out = _test_connection_cli(env, bad)
        _check(rc == 1 and "401" in out and "password" in out, "test-connection: %d %s" % (rc, out))
        rc, out = _test_connection_cli(env, good)
        _check(rc == 0 and "$metadata" in out, "test-connection ok: %d %s" % (rc, out))
    finally:
        for g in gws:
            g.stop()
            g.cleanup()
        sim.stop()


def case_sccm_faults_never_give_a_verdict(env):
    """Every fault switch of the simulator gives 503 for a device not in the cache, with the
    connection test naming the cause; after a fault clears the same device is answered."""
    sim = SccmSim(auth="basic")
    gw = None
    faults = [
        ("status", "401", "401"),
        ("status", "403", "403"),
        ("status", "404", "404"),
        ("status", "500", "500"),
        ("garbage", "1", None),
        ("huge", "3", None),  # past the adapter's max_body below
        ("stall", "1", None),
        ("latency", "8000", None),  # past lookup_timeout
    ]
    try:
        gw = _sccm_gateway(env, sim, max_body=1048576).start()
        for name, value, code in faults:
            sim.reset()
            sim.fault(name, value)
            r = gw.request("GET", Q % "005056A10001")
            _check(r.status == 503, "fault %s=%s: %d %s" % (name, value, r.status, r.text))
            _check(b"<deviceList" not in r.body, "fault %s gave a verdict" % name)
            if code:
                st, doc = _test_connection_api(gw)
                _check(st == 502 and not doc["ok"] and code in doc["message"],
                       "test %s=%s: %d %r" % (name, value, st, doc))
        sim.reset()
        r = gw.request("GET", Q % "005056A10001")
        _check(r.status == 200 and len(_devices(r)) == 1, "after faults: %d %s" % (r.status, r.text))
        st, doc = _test_connection_api(gw)
        _check(st == 200 and doc["ok"], "test after faults: %d %r" % (st, doc))
        listing = gw.request("GET", "/api/v1/adapters", user="boss")
        _check(listing.status == 200 and b'"sccm"' in listing.body, "adapters %r" % listing.body)
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()


def case_sccm_stale_served_while_vendor_fails(env):
    """A device answered before is served from the cache (stale) while SCCM fails."""
    sim = SccmSim(auth="basic")
    gw = None
    try:
        gw = _sccm_gateway(env, sim, cache={"fresh_ttl": "1s", "stale_ttl": "1h"}).start()
        r = gw.request("GET", Q % "005056A10002")
        _check(r.status == 200, "warm: %d" % r.status)
        first = r.body
        time.sleep(1.3)
        sim.fault("status", "500")
        r = gw.request("GET", Q % "005056A10002")
        _check(r.status == 200 and r.body == first, "stale: %d %s" % (r.status, r.text))
        r = gw.request("GET", Q % "005056A10001")  # never seen: no verdict
        _check(r.status == 503, "cold under fault: %d" % r.status)
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()


def case_sccm_other_ca_refused(env):
    """A server certificate from a CA other than the configured one is refused, and the test
    says the certificate is not trusted."""
    sim = SccmSim(other_ca=True, auth="basic")
    gw = None
    try:
        gw = _sccm_gateway(env, sim).start()
        r = gw.request("GET", Q % "005056A10001")
        _check(r.status == 503, "other CA: %d %s" % (r.status, r.text))
        _check(sim.route_count("SMS_R_System") == 0, "a request got through: %r" % sim.counts())
        rc, out = _test_connection_cli(env, gw)
        _check(rc == 1 and "not trusted" in out, "test-connection: %d %s" % (rc, out))
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()


def case_sccm_unreachable_diagnoses(env):
    """Connection refused and a listener that never answers: 503, and test-connection says
    which."""
    silent = SilentServer()
    sim = SccmSim(auth="basic")
    try:
        for port, want in ((free_port(), "refused"), (silent.port, "no answer")):
            ad = sim.adapter(breaker_failures=0, connect_timeout="1s")
            ad["url"] = "https://127.0.0.1:%d/AdminService" % port
            gw = _sccm_gateway(env, sim, adapter=ad).start()
            try:
                r = gw.request("GET", Q % "005056A10001")
                _check(r.status == 503, "%s: %d" % (want, r.status))
                rc, out = _test_connection_cli(env, gw)
                _check(rc == 1 and want in out, "test-connection %s: %d %s" % (want, rc, out))
            finally:
                gw.stop()
                gw.cleanup()
    finally:
        silent.stop()
        sim.stop()


def case_sccm_dogpile_asks_once(env):
    """100 concurrent cold queries for one MAC reach the simulator once."""
    sim = SccmSim(auth="basic")
    gw = None
    try:
        # 100 TLS handshakes at once on two server threads take longer than 30 s under valgrind:
        # the header deadline must not cut them (this case is about the vendor calls)
        slow = {"header_timeout": "120s", "body_timeout": "120s"} if env.valgrind else None
        gw = _sccm_gateway(env, sim, cache={"lock_wait": "10s"}, listen=slow).start()
        sim.reset()  # the start-up snapshot's listing is not what is counted here
        sim.fault("latency", "300")
        results = []

        def one():
            try:
                r = gw.request("GET", Q % "005056A10007", timeout=60)
                results.append((r.status, len(_devices(r)) if r.status == 200 else -1))
            except Exception as e:  # counted as a failure below
                results.append((0, repr(e)))

        threads = [threading.Thread(target=one) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        _check(results.count((200, 1)) == 100, "answers %r" % sorted(set(map(str, results))))
        c = sim.counts()["by_route"]
        _check(c.get("SMS_R_System") == 1 and c.get("SMS_G_System_NETWORK_ADAPTER") == 1 and
               c.get("SMS_G_System_CI_ComplianceState") == 1 and
               c.get("SMS_G_System_CH_ClientSummary") == 1, "simulator counts %r" % c)
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()


def case_sccm_hits_do_not_wait_behind_misses(env):
    """With both server threads' worth of slow misses in flight, a cache hit is answered at
    once: the misses wait suspended, not on a server thread."""
    sim = SccmSim(auth="basic")
    gw = None
    try:
        gw = _sccm_gateway(env, sim, api={"lookup_timeout": "20s"}, cache={"lock_wait": "10s"},
                           max_connections=32).start()
        r = gw.request("GET", Q % "005056A10001")
        _check(r.status == 200, "warm: %d" % r.status)
        sim.fault("latency", "4000")
        done = []
        macs = ["005056A1%04X" % (0x100 + i) for i in range(12)]  # distinct, not registered

        def slow(mac):
            r = gw.request("GET", Q % mac, timeout=60)
            done.append((time.monotonic(), r.status))

        threads = [threading.Thread(target=slow, args=(m,)) for m in macs]
        for t in threads:
            t.start()
        time.sleep(0.5)
        hit = gw.request("GET", Q % "005056A10001")
        hit_at = time.monotonic()
        _check(hit.status == 200 and len(_devices(hit)) == 1, "hit: %d" % hit.status)
        for t in threads:
            t.join(60)
        _check(len(done) == 12 and all(s == 200 for _, s in done), "slow ones: %r" % done)
        _check(all(at > hit_at for at, _ in done), "the hit waited behind a miss")
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()


def case_sccm_shutdown_answers_suspended(env):
    """SIGTERM while lookups wait on a slow SCCM: each suspended request gets an answer (503)
    and the gateway exits 0."""
    sim = SccmSim(auth="basic")
    gw = None
    try:
        gw = _sccm_gateway(env, sim, api={"lookup_timeout": "30s"},
                           listen={"shutdown_grace": "1s"}).start()
        sim.fault("latency", "20000")
        got = []

        def slow(mac):
            try:
                got.append(gw.request("GET", Q % mac, timeout=60).status)
            except Exception as e:
                got.append(repr(e))

        threads = [threading.Thread(target=slow, args=("005056A1%04X" % (0x200 + i),))
                   for i in range(4)]
        for t in threads:
            t.start()
        # every request has reached the gateway and waits for SCCM
        limit = time.monotonic() + (60 if env.valgrind else 15)
        while gw.metrics().get("mdmgw_requests_total", 0) < 4 and time.monotonic() < limit:
            time.sleep(0.2)
        _check(gw.metrics().get("mdmgw_requests_total", 0) >= 4, "requests not in flight")
        t0 = time.monotonic()
        rc = gw.stop()
        for t in threads:
            t.join(30)
        _check(rc == 0, "exit %s\n%s" % (rc, gw.log()[-3000:]))
        _check(got == [503] * 4, "answers %r" % got)
        _check(time.monotonic() - t0 < 15, "shutdown waited for the vendor")
        _check(re.search(r"shutting down", gw.log()), "no shutdown answer logged")
    finally:
        if gw:
            gw.cleanup()
        sim.stop()


def case_sccm_breaker_opens_and_recovers(env):
    """After consecutive failures the adapter stops calling SCCM (503 at once, the simulator
    sees nothing) and reports the breaker open; a probe after the open period recovers."""
    sim = SccmSim(auth="basic")
    gw = None
    try:
        gw = _sccm_gateway(env, sim, adapter=sim.adapter(breaker_failures=2,
                                                         breaker_open="1s")).start()
        sim.fault("status", "500")
        for mac in ("005056A10001", "005056A10002"):
            _check(gw.request("GET", Q % mac).status == 503, "fault")
        before = sim.counts().get("requests", 0)
        _check(gw.request("GET", Q % "005056A10003").status == 503, "open")
        _check(sim.counts().get("requests", 0) == before, "called SCCM while open")
        import json
        doc = json.loads(gw.request("GET", "/api/v1/adapters", user="boss").body)
        ad = [a for a in doc["adapters"] if a["name"] == "sccm"][0]
        _check(ad["breaker"] in ("open", "probing") and not ad["healthy"] and ad["last_error"],
               "adapter %r" % ad)
        sim.reset()
        time.sleep(1.2)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = gw.request("GET", Q % "005056A10003")
            if r.status == 200:
                break
            time.sleep(0.3)
        _check(r.status == 200, "did not recover: %d" % r.status)
    finally:
        if gw:
            gw.stop()
            gw.cleanup()
        sim.stop()
