"""End to end: vendor change -> reconciler -> transition -> CoA at a real FreeRADIUS server.

The real gateway with the SCCM and cloud MDM simulators, a short polling interval, sessions put
through the admin API (or RADIUS accounting from radclient), and FreeRADIUS listening for CoA on
a free loopback port; its detail file is what the "switch" received. Covers: a flip sends
exactly one CoA each way, a vendor down for a cycle sends none and keeps its rows, a restart
between cycles sends none for unchanged devices, 30 % flipping at once is held until released.
"""
import json
import os
import subprocess
import sys
import time

from cases_recon import _check, _cloud, _status, _wait_generation
from lib import MdmSim, SccmSim

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "sim"))
from freeradius import FreeRadius  # noqa: E402

SECRET = "coa-e2e-secret-1"
STATUS = "/api/v1/reconciler"


def _dashed(mac):
    return "-".join(mac[i:i + 2] for i in range(0, 12, 2))


def _gateway(env, adapters, fr, interval="2s", reconciler=None, name="coa-e2e"):
    rec = {"interval": interval, "jitter": 0}
    rec.update(reconciler or {})
    over = {"adapters": adapters, "reconciler": rec,
            "nas": [{"address": "127.0.0.1", "port": fr.port, "secret": SECRET,
                     "timeout": "500ms", "tries": 3}],
            "coa": {"rate_per_sec": 100, "max_attempts": 2, "backoff": "1s"},
            "api": {"lookup_timeout": "5s" if env.valgrind else "3s"}}
    if env.valgrind:
        over["listen"] = {"header_timeout": "30s"}
    return env.gateway(overrides=over, name=name)


def _cycles(gw, n):
    """Waits for n more published generations; the last status."""
    st = _status(gw)
    for _ in range(n):
        st = _wait_generation(gw, st["generation"])
    return st


def _session(gw, mac, sid):
    body = json.dumps({"nas_ip": "127.0.0.1", "acct_session_id": sid, "user_name": "u-" + sid})
    r = gw.request("PUT", "/api/v1/sessions/" + mac, user="boss", body=body,
                   headers={"Content-Type": "application/json"})
    _check(r.status == 200, "PUT session %s: %d %r" % (mac, r.status, r.body))


def _coas(fr, mac=None):
    """The CoA/Disconnect requests FreeRADIUS received (for one MAC, when given)."""
    got = fr.requests()
    if mac is None:
        return got
    return [q for q in got if q.get("Calling-Station-Id") == _dashed(mac)]


def _wait_coas(fr, mac, n, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if len(_coas(fr, mac)) >= n:
            return _coas(fr, mac)
        time.sleep(0.1)
    raise AssertionError("%d CoA for %s expected, %d arrived:\n%s" %
                         (n, mac, len(_coas(fr, mac)), fr.log()[-3000:]))


def _flip(mdm, mac, compliant):
    mdm.control("POST", "device?mac=%s&compliant=%s" % (mac, "true" if compliant else "false"))


def case_coa_e2e_one_coa_per_change(env):
    """Flip -> exactly one CoA within an interval; back -> one; vendor down -> none, rows kept;
    restart between cycles -> none for unchanged devices."""
    fr = FreeRadius(SECRET).start()
    mdm = MdmSim()
    sccm = SccmSim(auth="basic")
    gw = None
    interval = 2.0
    slack = 8.0 if env.valgrind else 3.0
    try:
        gw = _gateway(env, [sccm.adapter(breaker_failures=0), _cloud(mdm)], fr).start()
        _wait_generation(gw, 0)
        _session(gw, "F018983A4B5C", "sess-1")
        _session(gw, "A483E7445566", "sess-2")
        _cycles(gw, 1)
        _check(_coas(fr) == [], "CoA on first sight / unchanged devices: %r" % _coas(fr))

        # compliant -> non-compliant: one CoA, within one interval (plus the cycle itself)
        t0 = time.monotonic()
        _flip(mdm, "F018983A4B5C", False)
        got = _wait_coas(fr, "F018983A4B5C", 1, 2 * interval + slack)
        took = time.monotonic() - t0
        _check(took <= 2 * interval + slack, "CoA after %.1f s" % took)
        q = got[0]
        _check(q.get("Acct-Session-Id") == "sess-1", "session not named: %r" % q)
        _check("Message-Authenticator" in q, "no Message-Authenticator: %r" % q)
        _check("reauthenticate" in json.dumps(q), "no reauthenticate AV-pair: %r" % q)
        _cycles(gw, 2)
        _check(len(_coas(fr, "F018983A4B5C")) == 1, "repeated: %r" % _coas(fr))
        log = gw.log()
        _check("F018983A4B5C@" in log and "epoch" in log, "no CoA log line with id and epoch")

        # non-compliant -> compliant: one more
        _flip(mdm, "F018983A4B5C", True)
        _wait_coas(fr, "F018983A4B5C", 2, 2 * interval + slack)
        _cycles(gw, 2)
        _check(len(_coas(fr, "F018983A4B5C")) == 2, "back: %r" % _coas(fr))

        # the vendor is down for cycles: no CoA, its rows kept (A483... stays non-compliant)
        mdm.fault("status", 500)
        _flip(mdm, "A483E7445566", True)
        st = _cycles(gw, 2)
        _check(not st["last_cycle"]["complete"], "vendor down but complete: %r" % st)
        _check(_coas(fr, "A483E7445566") == [], "CoA while the vendor was down")
        r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=compliance"
                       "&value=false&filter=all")
        _check(r.status == 200 and b"A483E7445566" in r.body, "kept rows left the poll")

        # restart between cycles (vendor still down, then back): nothing unchanged is sent
        sent = len(_coas(fr))
        _check(gw.stop() == 0, "exit code")
        gw.start()
        _session(gw, "F018983A4B5C", "sess-1")
        _session(gw, "A483E7445566", "sess-2")
        _cycles(gw, 2)
        _check(len(_coas(fr)) == sent, "CoA after restart: %r" % _coas(fr)[sent:])
        # the vendor back: the change made while it was down is a real one: one CoA
        mdm.fault("status", 0)
        _wait_coas(fr, "A483E7445566", 1, 3 * interval + slack)
        _cycles(gw, 2)
        _check(len(_coas(fr, "A483E7445566")) == 1, "after recovery: %r" % _coas(fr))
        _check(len(_coas(fr, "F018983A4B5C")) == 2, "unchanged device got a CoA")
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()
        sccm.stop()
        fr.cleanup()


def case_coa_e2e_guard_holds_until_released(env):
    """30 % of the devices flipping at once: held (no CoA), shown, sent on release."""
    fr = FreeRadius(SECRET).start()
    mdm = MdmSim()
    gw = None
    try:
        gw = _gateway(env, [_cloud(mdm)], fr, interval="0",
                      reconciler={"guard_share": 0.2, "guard_min": 10})
        gw.start()
        st = _wait_generation(gw, 0)
        devices = st["last_cycle"]["devices"]
        listed = json.loads(gw.request("GET", "/api/v1/sessions", user="boss").body)
        _check(listed.get("count", 0) == 0, "sessions at start: %r" % listed)
        data = json.load(open(os.path.join(os.path.dirname(__file__), "..", "sim",
                                           "mdm_data.json")))["devices"]
        compliant = [d["macaddress"] for d in data if d.get("compliant") and
                     d.get("registered", True)]
        flips = compliant[:int(devices * 0.3) + 1]
        _check(len(flips) >= 15, "too few compliant devices to flip: %d" % len(flips))
        for i, mac in enumerate(flips):
            _session(gw, mac, "g-%d" % i)
        for mac in flips:
            _flip(mdm, mac, False)
        r = gw.request("POST", STATUS + "/run", user="boss")
        _check(r.status == 202, "run: %d %r" % (r.status, r.body))
        st = _wait_generation(gw, st["generation"])
        time.sleep(2)
        guard = _status(gw).get("guard", {})
        _check(guard.get("held", 0) >= len(flips), "not held: %r" % guard)
        _check(_coas(fr) == [], "CoA sent while held: %r" % _coas(fr)[:3])
        _check("guard" in gw.log(), "the guard did not log")
        r = gw.request("POST", STATUS + "/release", user="boss")
        _check(r.status == 200 and json.loads(r.body)["released"] >= len(flips),
               "release: %d %r" % (r.status, r.body))
        end = time.monotonic() + (60 if env.valgrind else 20)
        while time.monotonic() < end and len(_coas(fr)) < len(flips):
            time.sleep(0.2)
        sent = sorted(q["Calling-Station-Id"] for q in _coas(fr))
        _check(sent == sorted(_dashed(m) for m in flips), "released CoA: %r" % sent)
        r = gw.request("POST", STATUS + "/release", user="boss")
        _check(r.status == 409, "second release: %d" % r.status)
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()
        fr.cleanup()


def case_coa_e2e_accounting_session_and_failures(env):
    """A session learnt from RADIUS accounting (radclient) gets the CoA; a NAK is final; a NAS
    with the wrong secret is retransmitted to, then listed as failed."""
    fr = FreeRadius(SECRET, nak_macs=["A483E7445566"]).start()
    mdm = MdmSim()
    gw = None
    acct_port = None
    try:
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        acct_port = s.getsockname()[1]
        s.close()
        gw = _gateway(env, [_cloud(mdm)], fr, interval="0")
        gw.config["accounting"] = {"listen": "127.0.0.1:%d" % acct_port,
                                   "clients": [{"address": "127.0.0.1",
                                                "secret": "acct-secret-1"}]}
        gw.config["nas"].append({"address": "127.0.0.2", "host": "127.0.0.1",
                                 "port": fr.port, "secret": "not-the-secret",
                                 "timeout": "200ms", "tries": 2})
        with open(gw.config_path, "w") as f:
            json.dump(gw.config, f)
        gw.start()
        st = _wait_generation(gw, 0)
        acct = ("Acct-Status-Type = Start\nCalling-Station-Id = \"F0-18-98-3A-4B-5C\"\n"
                "Acct-Session-Id = \"acct-7\"\nNAS-IP-Address = 127.0.0.1\n"
                "User-Name = \"alice\"\n")
        rc = subprocess.run(["radclient", "-x", "-r", "3", "-t", "2",
                             "127.0.0.1:%d" % acct_port, "acct", "acct-secret-1"],
                            input=acct.encode(), capture_output=True, timeout=30)
        _check(rc.returncode == 0, "radclient: %r %r" % (rc.stdout, rc.stderr))
        _session(gw, "A483E7445566", "nak-1")
        body = json.dumps({"nas_ip": "127.0.0.2", "acct_session_id": "bad-1"})
        r = gw.request("PUT", "/api/v1/sessions/5CF938A1B2C3", user="boss", body=body,
                       headers={"Content-Type": "application/json"})
        _check(r.status == 200, "PUT: %d" % r.status)
        _flip(mdm, "F018983A4B5C", False)   # ACK, to the accounting session
        _flip(mdm, "A483E7445566", True)    # NAK with Error-Cause 503: final
        _flip(mdm, "5CF938A1B2C3", False)   # wrong secret: no answer, retried, failed
        gw.request("POST", STATUS + "/run", user="boss")
        _wait_generation(gw, st["generation"])
        got = _wait_coas(fr, "F018983A4B5C", 1, 30 if env.valgrind else 10)
        _check(got[0].get("Acct-Session-Id") == "acct-7", "accounting session: %r" % got)
        _wait_coas(fr, "A483E7445566", 1, 30 if env.valgrind else 10)
        end = time.monotonic() + (90 if env.valgrind else 30)
        failed = []
        while time.monotonic() < end:
            r = gw.request("GET", "/api/v1/coa?state=failed", user="boss")
            _check(r.status == 200, "coa list: %d %r" % (r.status, r.body))
            failed = [d for d in json.loads(r.body)["deliveries"]
                      if d.get("mac") == "5CF938A1B2C3"]
            if failed:
                break
            time.sleep(0.3)
        _check(failed and failed[0]["attempts"] >= 2, "wrong secret not listed: %r" % failed)
        _check(_coas(fr, "5CF938A1B2C3") == [], "FreeRADIUS accepted a wrong secret")
        _check(len(_coas(fr, "A483E7445566")) == 1, "a NAK was retried")
        r = gw.request("GET", "/api/v1/coa?state=all", user="boss")
        nak = [d for d in json.loads(r.body)["deliveries"] if d.get("mac") == "A483E7445566"]
        _check(nak and "503" in nak[0].get("detail", ""), "NAK cause not kept: %r" % nak)
        _check(gw.stop() == 0, "exit code")
    finally:
        if gw:
            gw.cleanup()
        mdm.stop()
        fr.cleanup()


def _sent_ids(log):
    """Transition ids this gateway delivered (an attempt line ending ok), from its log."""
    import re
    return re.findall(r"coa: event (\S+) epoch (\d+) sink radius mac \S+ session \S+ "
                      r"attempt \d+/\d+: ok", log)


def case_coa_e2e_ha_two_instances(env):
    """Two gateways on one memcached: one reconciler at a time, the follower answers the poll
    from the leader's published generation; the leader killed, the other takes over within the
    lease TTL; no transition id is delivered twice (log lines carry ids and epochs)."""
    from lib import Memcached
    import signal
    mc = Memcached().start()
    fr = FreeRadius(SECRET).start()
    mdm = MdmSim()
    gws = []
    try:
        shared = {"servers": ["127.0.0.1:%d" % mc.port],
                  "hmac_key": {"env": "MDMGW_TEST_HMAC_KEY"}}
        for name in ("ha-a", "ha-b"):
            gw = _gateway(env, [_cloud(mdm)], fr, name=name)
            gw.config["cache"] = dict(gw.config.get("cache", {}), **shared)
            gw.config["ha"] = {"lease_ttl": "3s", "follow_interval": "1s"}
            with open(gw.config_path, "w") as f:
                json.dump(gw.config, f)
            gws.append(gw.start())
            if name == "ha-a":
                _wait_generation(gw, 0)
        a, b = gws
        st_a, st_b = _status(a), _status(b)
        _check(st_a["ha"]["leader"] and not st_b["ha"]["leader"], "leaders: %r %r" %
               (st_a["ha"], st_b["ha"]))
        # the follower answers the NAC's poll from the leader's generation
        end = time.monotonic() + (60 if env.valgrind else 15)
        poll = "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=compliance&value=false" \
               "&filter=all"
        while time.monotonic() < end:
            r = b.request("GET", poll)
            if r.status == 200:
                break
            time.sleep(0.2)
        _check(r.status == 200 and b"A483E7445566" in r.body, "follower poll: %d %r" %
               (r.status, r.body[:300]))
        _check(_status(b)["last_cycle"].get("published") is not True,
               "the follower ran a cycle of its own: %r" % _status(b)["last_cycle"])
        for gw in gws:  # accounting is copied to every instance
            _session(gw, "F018983A4B5C", "ha-1")
            _session(gw, "5CF938A1B2C3", "ha-2")
        _flip(mdm, "F018983A4B5C", False)
        _wait_coas(fr, "F018983A4B5C", 1, 30 if env.valgrind else 10)
        _cycles(a, 2)
        time.sleep(2)  # the follower's copy of the same generation: its claims must fail
        _check(len(_coas(fr, "F018983A4B5C")) == 1, "twice: %r" % _coas(fr))
        # the leader dies; the follower takes over within the lease TTL
        a.stop(signal.SIGKILL)
        end = time.monotonic() + (40 if env.valgrind else 3 + 5)
        while time.monotonic() < end and not _status(b)["ha"]["leader"]:
            time.sleep(0.1)
        st_b = _status(b)
        _check(st_b["ha"]["leader"] and st_b["ha"]["epoch"] >= 2, "no take-over: %r" % st_b)
        _flip(mdm, "5CF938A1B2C3", False)
        _flip(mdm, "F018983A4B5C", True)
        _wait_coas(fr, "5CF938A1B2C3", 1, 30 if env.valgrind else 12)
        _wait_coas(fr, "F018983A4B5C", 2, 30 if env.valgrind else 12)
        _cycles(b, 2)
        _check(len(_coas(fr, "5CF938A1B2C3")) == 1 and len(_coas(fr, "F018983A4B5C")) == 2,
               "after take-over: %r" % [q.get("Calling-Station-Id") for q in _coas(fr)])
        sent = _sent_ids(a.log()) + _sent_ids(b.log())
        ids = [i for i, _ in sent]
        _check(len(ids) == 3 and len(set(ids)) == 3, "ids sent: %r" % sent)
        epochs = {i: int(e) for i, e in sent}
        _check(any(e >= 2 for e in epochs.values()), "no CoA under the new epoch: %r" % sent)
    finally:
        for gw in gws:
            gw.stop()
            gw.cleanup()
        mdm.stop()
        fr.cleanup()
        mc.stop()
