"""Integration cases for the polling reconciler (gateway/recon/recon.h): the real gateway with the SCCM
and cloud MDM simulators, a short interval, changes in the simulator showing in the NAC's poll,
a vendor down for a cycle keeping its rows, POST /api/v1/reconciler/run, and a paging walk that
stays in its generation while a new one is swapped in.
"""
import json
import time
import xml.etree.ElementTree as ET

from lib import MdmSim, SccmSim

NONCOMP = "/ciscoise/mdmapi/v3/devices/?paging=%d&querycriteria=compliance&value=false&filter=all"
STATUS = "/api/v1/reconciler"


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _cloud(sim):
    return {"name": "cloud", "type": "mcms", "url": sim.root, "ca_file": sim.ca,
            "user": sim.user, "password": sim.password, "breaker_failures": 0,
            "list_timeout": "3s"}


def _gateway(env, adapters, interval, api=None):
    over = {"adapters": adapters, "reconciler": {"interval": interval, "jitter": 0},
            "api": dict({"lookup_timeout": "5s" if env.valgrind else "3s"}, **(api or {}))}
    if env.valgrind:
        over["listen"] = {"header_timeout": "30s"}
    return env.gateway(overrides=over, name="recon")


def _status(gw):
    r = gw.request("GET", STATUS, user="boss")
    _check(r.status == 200, "status: %d %r" % (r.status, r.body))
    return json.loads(r.body)


def _wait_generation(gw, above, limit=60):
    """Waits until a generation past `above` is published; its status."""
    end = time.monotonic() + limit * (4 if gw.valgrind else 1)
    while time.monotonic() < end:
        st = _status(gw)
        if st["generation"] > above:
            return st
        time.sleep(0.1)
    raise AssertionError("no generation past %d: %r" % (above, _status(gw)))


def _wait_cycles(gw, n, limit=60):
    """Waits until n cycles have ended (a generation is published before its cycle ends:
    write-through and transitions follow); the status then."""
    end = time.monotonic() + limit * (4 if gw.valgrind else 1)
    while time.monotonic() < end:
        st = _status(gw)
        if st["cycles"] >= n and not st["running"]:
            return st
        time.sleep(0.1)
    raise AssertionError("not %d cycles: %r" % (n, _status(gw)))


def _wait_complete(gw, above):
    """Waits for a complete generation past `above`; its status."""
    st = _wait_generation(gw, above)
    for _ in range(5):
        if st["last_cycle"]["complete"]:
            return st
        st = _wait_generation(gw, st["generation"])
    raise AssertionError("no complete generation: %r" % st)


def _page(gw, cursor, conn=None):
    r = gw.request("GET", NONCOMP % cursor, conn=conn)
    _check(r.status == 200, "poll page at %d: %d %r" % (cursor, r.status, r.body[:200]))
    x = ET.fromstring(r.body)
    return ([d.findtext("macaddress") for d in x.findall("deviceList/device")],
            int(x.findtext("paging_info")))


def _noncompliant(gw):
    macs, cursor, pages = [], 0, 0
    while True:
        got, cursor = _page(gw, cursor)
        macs += got
        pages += 1
        _check(pages < 10000, "walk does not end")
        if cursor == 0:
            return macs


def case_recon_cycles_follow_the_vendors(env):
    mdm = MdmSim()
    sccm = SccmSim(auth="basic")
    gw = None
    try:
        gw = _gateway(env, [sccm.adapter(breaker_failures=0), _cloud(mdm)], "2s").start()
        st = _wait_generation(gw, 0)
        _check(st["enabled"] and st["interval_ms"] == 2000, "status: %r" % st)
        last = st["last_cycle"]
        _check(last["complete"] and last["devices"] > 60, "first cycle: %r" % last)
        _check([a["name"] for a in last["adapters"]] == ["sccm", "cloud"], "adapters: %r" % last)
        for k in ("started_ms", "finished_ms", "last_page_ms", "wall_ms", "cpu_ms"):
            _check(isinstance(last[k], int), "%s: %r" % (k, last))
        _check(last["started_ms"] <= last["last_page_ms"] <= last["finished_ms"], "times")
        before = _noncompliant(gw)
        _check("A483E7445566" in before and "F018983A4B5C" not in before,
               "non-compliant at start: %r" % before)
        # a device falls out of compliance: the next full cycle's generation shows it
        mdm.control("POST", "device?mac=F018983A4B5C&compliant=false")
        gen = _status(gw)["generation"]
        _wait_generation(gw, gen + 1)  # gen+1 may have listed before the change
        now = _noncompliant(gw)
        _check("F018983A4B5C" in now, "changed device not in the poll: %r" % now)
        _check(len(now) == len(before) + 1, "%d -> %d" % (len(before), len(now)))
        # the vendor is down: its rows are kept, stale with an age, the change made meanwhile
        # does not show, and the status says why
        mdm.fault("status", 500)
        mdm.control("POST", "device?mac=F018983A4B5C&compliant=true")
        gen = _status(gw)["generation"]
        st = _wait_generation(gw, gen + 1)
        cloud = st["last_cycle"]["adapters"][1]
        _check(not st["last_cycle"]["complete"] and not cloud["complete"], "status: %r" % st)
        _check(cloud["rows"] > 60 and cloud["age_ms"] >= 1000 and cloud["why"],
               "stale adapter: %r" % cloud)
        _check(st["last_cycle"]["adapters"][0]["complete"], "sccm: %r" % st)
        kept = _noncompliant(gw)
        _check(sorted(kept) == sorted(now), "rows of the vendor down changed: %r" % kept)
        # back: the change shows
        mdm.fault("status", 0)
        _wait_complete(gw, _status(gw)["generation"])
        _check(sorted(_noncompliant(gw)) == sorted(before), "recovered poll differs")
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()
        sccm.stop()


def case_recon_run_now_and_roles(env):
    mdm = MdmSim()
    gw = None
    try:
        gw = _gateway(env, [_cloud(mdm)], "0").start()
        st = _wait_cycles(gw, 1)  # the first cycle runs at start, even with no timer
        _check(not st["enabled"] and st["cycles"] == 1, "status: %r" % st)
        _check(st["last_cycle"]["writes"] == st["last_cycle"]["devices"] == 67,
               "written through: %r" % st)
        # written through: a login by MAC is a cache hit, the vendor is not asked
        asked = mdm.counts()["requests"]
        r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?querycriteria=macaddress"
                       "&value=A483E7445566&filter=all")
        _check(r.status == 200, "MAC query: %d %r" % (r.status, r.body))
        x = ET.fromstring(r.body)
        _check(x.findtext("deviceList/device/attributes/compliance/status") == "false",
               "MAC answer: %r" % r.body)
        _check(mdm.counts()["requests"] == asked, "the vendor was asked: %r" % mdm.counts())
        time.sleep(0.5)
        _check(_status(gw)["cycles"] == 1, "a cycle ran with the timer off")
        r = gw.request("POST", STATUS + "/run", user="boss", body=b"")
        _check(r.status == 202, "run: %d %r" % (r.status, r.body))
        body = json.loads(r.body)
        _check(body == {"queued": True, "generation": 1}, "run: %r" % body)
        st = _wait_cycles(gw, 2)
        _check(st["generation"] == 2 and st["cycles"] == 2, "after run: %r" % st)
        # admin only, and the methods
        for method, path in (("GET", STATUS), ("POST", STATUS + "/run")):
            r = gw.request(method, path, user="demo", body=b"" if method == "POST" else None)
            _check(r.status == 403, "%s %s as query: %d" % (method, path, r.status))
        r = gw.request("GET", STATUS + "/run", user="boss")
        _check(r.status == 405, "GET run: %d" % r.status)
        r = gw.request("POST", STATUS, user="boss", body=b"")
        _check(r.status == 405, "POST status: %d" % r.status)
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()


def case_recon_walk_stays_in_its_generation(env):
    mdm = MdmSim()
    gw = None
    try:
        gw = _gateway(env, [_cloud(mdm)], "0", api={"query_max_size": 2}).start()
        _wait_generation(gw, 0)
        full = _noncompliant(gw)
        _check(len(full) >= 8, "non-compliant: %r" % full)
        # start a walk, then change the vendor and swap in a new generation mid-walk
        conn = gw.connect()
        seen, pages = [], 0
        got, cursor = _page(gw, 0, conn)
        seen += got
        _check(len(got) == 2 and cursor != 0, "first page: %r %d" % (got, cursor))
        mdm.control("POST", "device?mac=%s&compliant=true" % full[-1])
        mdm.control("POST", "device?mac=F018983A4B5C&compliant=false")
        r = gw.request("POST", STATUS + "/run", user="boss", body=b"")
        _check(r.status == 202, "run: %d" % r.status)
        _wait_generation(gw, 1)
        while cursor != 0:
            got, cursor = _page(gw, cursor, conn)
            _check(len(got) <= 2, "page of %d" % len(got))
            seen += got
            pages += 1
            _check(pages < 1000, "walk does not end")
        conn.close()
        _check(seen == full, "the walk mixed generations:\n%r\n%r" % (seen, full))
        # a new walk sees the new generation
        new = _noncompliant(gw)
        _check(full[-1] not in new and "F018983A4B5C" in new and len(new) == len(full),
               "new walk: %r" % new)
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()
