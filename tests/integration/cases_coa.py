"""Change of Authorization end to end: the real gateway with its MnT and webhook sinks against
tests/sim/mnt_sim.py and tests/sim/webhook_sim.py, driven by POST /api/v1/coa/test and checked
through the simulators' records and GET /api/v1/coa.
"""
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time

from lib import Gateway, SIM_DIR

SECRET = "webhook-secret-0123456789"
MNT_USER, MNT_PASSWORD = "ers-coa", "mnt pw 'x'"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


class _Sim:
    """One of the CoA simulators as a process on a free port; stopped by pid."""

    def __init__(self, script, certs, extra):
        self.ca = os.path.join(certs, "ca.pem")
        cmd = [sys.executable, os.path.join(SIM_DIR, script), "--port", "0",
               "--cert", os.path.join(certs, "server.pem"),
               "--key", os.path.join(certs, "server-key.pem")] + extra
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line.startswith(b"READY "):
            self.proc.kill()
            raise AssertionError("%s not ready: %r %r" % (script, line, self.proc.stderr.read()))
        self.port = int(line.split()[1])
        self.root = "https://127.0.0.1:%d" % self.port

    def control(self, method, path):
        ctx = ssl.create_default_context(cafile=self.ca)
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            c.request(method, "/_sim/" + path)
            r = c.getresponse()
            body = r.read()
            check(r.status == 200, "sim %s %s: %d" % (method, path, r.status))
            return json.loads(body) if body else None
        finally:
            c.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _setup(env, coa_extra=None):
    certs = tempfile.mkdtemp(prefix="mdmgw-coa-")
    rc = subprocess.run(["bash", os.path.join(SIM_DIR, "make_certs.sh"), certs],
                        capture_output=True, timeout=60)
    check(rc.returncode == 0, "make_certs.sh: %r" % rc.stderr)
    mnt = _Sim("mnt_sim.py", certs, ["--user", MNT_USER, "--password", MNT_PASSWORD])
    hook = _Sim("webhook_sim.py", certs, ["--secret", SECRET])
    coa = {"rate_per_sec": 50, "max_attempts": 3, "backoff": "100ms",
           "mnt": {"url": mnt.root, "ca_file": mnt.ca, "user": MNT_USER,
                   "password": MNT_PASSWORD, "timeout": "2s"},
           "webhook": {"url": hook.root + "/hook", "ca_file": hook.ca, "secret": SECRET,
                       "timeout": "2s"}}
    coa.update(coa_extra or {})
    gw = Gateway(env.binary, valgrind=env.valgrind, overrides={"coa": coa})
    gw.start()
    return certs, mnt, hook, gw


def _teardown(certs, mnt, hook, gw):
    try:
        if gw.proc:
            check(gw.stop() == 0, "gateway exit code")
    finally:
        gw.cleanup()
        mnt.stop()
        hook.stop()
        shutil.rmtree(certs, ignore_errors=True)


def _test(gw, mac, kind=None):
    body = {"mac": mac}
    if kind:
        body["kind"] = kind
    r = gw.request("POST", "/api/v1/coa/test", user="boss", body=json.dumps(body).encode(),
                   headers={"Content-Type": "application/json"})
    check(r.status == 202, "coa/test: %d %s" % (r.status, r.text))
    return json.loads(r.body)["event_id"]


def _deliveries(gw, state):
    r = gw.request("GET", "/api/v1/coa?state=" + state, user="boss")
    check(r.status == 200, "GET coa: %d %s" % (r.status, r.text))
    return json.loads(r.body)["deliveries"]


def _wait(what, fn, secs=15):
    limit = time.monotonic() + secs
    while time.monotonic() < limit:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def case_coa_mnt_and_webhook(env):
    """A manual event reaches ISE MnT (session lookup, then Reauth on the session's PSN) and
    the webhook (signed, verified by the receiver), and is listed as sent."""
    certs, mnt, hook, gw = _setup(env)
    try:
        mnt.control("POST", "session?mac=AABBCCDDEEFF&psn=ise-psn7&nas_ip=10.1.1.1"
                    "&framed_ip=10.2.2.2")
        eid = _test(gw, "aa:bb:cc:dd:ee:ff")
        check(eid.startswith("manual:AABBCCDDEEFF@"), "event id %r" % eid)
        sent = _wait("two sent deliveries",
                     lambda: [d for d in _deliveries(gw, "sent") if d["event_id"] == eid]
                     if len(_deliveries(gw, "sent")) >= 2 else None)
        check({d["sink"] for d in sent} == {"mnt", "webhook"}, "sinks %r" % sent)
        calls = [c["path"] for c in mnt.control("GET", "calls")["calls"]]
        check(calls == ["/admin/API/mnt/Session/MACAddress/AA:BB:CC:DD:EE:FF",
                        "/admin/API/mnt/CoA/Reauth/ise-psn7/AA:BB:CC:DD:EE:FF/0"],
              "mnt calls %r" % calls)
        ev = hook.control("GET", "events")
        check(ev["rejected"] == 0 and len(ev["events"]) == 1, "webhook %r" % ev)
        check(ev["events"][0]["event_id"] == eid and ev["events"][0]["body"]["mac"] ==
              "AABBCCDDEEFF" and ev["events"][0]["body"]["id"] == eid, "webhook %r" % ev)
        # a disconnect goes to the Disconnect route with the session's addresses
        _test(gw, "AABBCCDDEEFF", "disconnect")
        _wait("disconnect call", lambda: len(mnt.control("GET", "calls")["calls"]) >= 4)
        last = mnt.control("GET", "calls")["calls"][-1]["path"]
        check(last == "/admin/API/mnt/CoA/Disconnect/ise-psn7/AA:BB:CC:DD:EE:FF/0/10.1.1.1/"
              "10.2.2.2", "disconnect %r" % last)
        m = gw.metrics()
        check(m.get('mdmgw_coa_attempts_total{sink="mnt",outcome="ok"}', 0) >= 1, "metrics")
        # no session known to ISE: no_session, not failed, not retried
        _test(gw, "001122334455")
        _wait("no_session", lambda: [d for d in _deliveries(gw, "all")
                                     if d["mac"] == "001122334455" and d["sink"] == "mnt"])
        d = [d for d in _deliveries(gw, "all") if d["mac"] == "001122334455" and
             d["sink"] == "mnt"][0]
        check(d["outcome"] == "no_session" and d["attempts"] == 1, "no session %r" % d)
        check(not [d for d in _deliveries(gw, "failed") if d["sink"] == "mnt"],
              "no_session listed as failed")
    finally:
        _teardown(certs, mnt, hook, gw)


def case_coa_webhook_retries_then_failed(env):
    """A webhook answering 500 is retried max_attempts times and then listed as failed; one
    answering 500 once is delivered on the second attempt. MnT results=false is refused."""
    certs, mnt, hook, gw = _setup(env)
    try:
        hook.control("POST", "fail?count=100&status=500")
        mnt.control("POST", "fault?name=results&value=false")
        mnt.control("POST", "session?mac=AABBCCDDEEFF")
        eid = _test(gw, "AABBCCDDEEFF")
        failed = _wait("failed deliveries", lambda: len(_deliveries(gw, "failed")) >= 2 and
                       _deliveries(gw, "failed"))
        byname = {d["sink"]: d for d in failed if d["event_id"] == eid}
        check(byname["webhook"]["outcome"] == "failed" and byname["webhook"]["attempts"] == 3
              and byname["webhook"]["detail"] == "HTTP 500", "webhook %r" % byname)
        check(byname["mnt"]["outcome"] == "refused" and byname["mnt"]["attempts"] == 1,
              "mnt %r" % byname)
        check(hook.control("GET", "events")["failed"] == 3, "webhook saw 3 attempts")
        hook.control("POST", "reset")
        hook.control("POST", "fail?count=1&status=500")
        eid2 = _test(gw, "AABBCCDDEEFF")
        ok = _wait("retried webhook delivered",
                   lambda: [d for d in _deliveries(gw, "sent") if d["event_id"] == eid2])
        check(ok[0]["attempts"] == 2, "attempts %r" % ok)
        ev = hook.control("GET", "events")
        check(len(ev["events"]) == 1 and ev["failed"] == 1, "webhook %r" % ev)
    finally:
        _teardown(certs, mnt, hook, gw)


def case_coa_api_checks(env):
    """Admin role only; bad bodies and states are 400; without sinks the API answers 503."""
    certs, mnt, hook, gw = _setup(env)
    try:
        r = gw.request("GET", "/api/v1/coa?state=failed", user="demo")
        check(r.status == 403, "non-admin: %d" % r.status)
        r = gw.request("GET", "/api/v1/coa?state=nope", user="boss")
        check(r.status == 400, "bad state: %d" % r.status)
        r = gw.request("POST", "/api/v1/coa/test", user="boss", body=b'{"mac": "zz"}')
        check(r.status == 400, "bad mac: %d" % r.status)
    finally:
        _teardown(certs, mnt, hook, gw)
    gw = Gateway(env.binary, valgrind=env.valgrind)
    gw.start()
    try:
        r = gw.request("GET", "/api/v1/coa", user="boss")
        check(r.status == 503, "no sinks: %d %s" % (r.status, r.text))
        check(gw.stop() == 0, "gateway exit code")
    finally:
        gw.cleanup()
