"""Integration cases for the benchmark harness of `make bench-reconcile`: the simulators'
generated devices (--generate, POST /_sim/flip) and bench/coa_responder (an RFC 5176 NAS). The
gateway is not involved; both are checked from outside, with radclient for the responder.
"""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

from lib import ROOT

SIM = os.path.join(ROOT, "tests", "sim")


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _no_valgrind(fn):
    fn.skip_valgrind = True  # nothing here runs the gateway: once per flavour is enough
    return fn


class _Proc:
    """A child started with "READY <port>" on its first stdout line, stopped by pid."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        m = re.match(r"READY (\d+)", line or "")
        if not m:
            self.p.kill()
            raise AssertionError("%s did not start: %r %s" % (cmd[:2], line, self.p.stderr.read()))
        self.port = int(m.group(1))

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            self.p.wait(20)
        return self.p.returncode


def _certs():
    d = tempfile.mkdtemp(prefix="mdmgw-bench-certs-")
    subprocess.run(["bash", os.path.join(SIM, "make_certs.sh"), d], check=True,
                   capture_output=True)
    return d


class _Client:
    def __init__(self, port, certs, user=None):
        ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
        self.c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
        self.auth = user and "Basic " + base64.b64encode(user.encode()).decode()

    def get(self, path):
        self.c.request("GET", path, headers={"Authorization": self.auth})
        r = self.c.getresponse()
        return r.status, r.read()

    def post(self, path, body):
        self.c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = self.c.getresponse()
        return r.status, r.read()


def _mdm_walk(cl, query):
    """Every page of a devices listing: (the MACs listed, the pages' bytes)."""
    macs, pages, cur = [], [], "0"
    while True:
        st, body = cl.get("/ciscoise/mdmapi/v3/devices/?%spaging=%s" % (query, cur))
        _check(st == 200, "listing %s: HTTP %d" % (query, st))
        pages.append(body)
        macs += re.findall(rb"<macaddress>([0-9A-F]{12})</macaddress>", body)
        cur = re.search(rb"<paging_info>(\d+)</paging_info>", body).group(1).decode()
        if cur == "0":
            return [m.decode() for m in macs], pages


def _sccm_walk(cl, cls, select):
    rows, url = [], "/AdminService/wmi/%s?$select=%s" % (cls, select)
    while url:
        st, body = cl.get(url)
        _check(st == 200, "%s: HTTP %d %r" % (url, st, body[:200]))
        doc = json.loads(body)
        rows += doc["value"]
        nl = doc.get("@odata.nextLink")
        url = nl and "/" + nl.split("/", 3)[3]
    return rows


@_no_valgrind
def case_bench_sims_generate_and_flip(env):
    """--generate N: N deterministic devices with unique MACs and the asked non-compliant share
    (the same for the same seed), listed in full by paging; POST /_sim/flip changes exactly the
    devices it reports, in the listings and in per-device lookups, and refuses bad bodies."""
    certs = _certs()
    common = ["--port", "0", "--cert", os.path.join(certs, "server.pem"), "--key",
              os.path.join(certs, "server-key.pem"), "--generate", "2500", "--seed", "5",
              "--noncompliant-share", "0.1"]
    procs = []
    try:
        for _ in range(2):  # twice: the seed alone fixes the data
            procs.append(_Proc([sys.executable, os.path.join(SIM, "mdm_sim.py"), "--user", "u",
                                "--password", "p", "--query-max-size", "1000"] + common))
        sccm = _Proc([sys.executable, os.path.join(SIM, "sccm_sim.py"), "--user", "D\\u",
                      "--password", "p", "--auth", "basic"] + common)
        procs.append(sccm)
        m1, m2 = (_Client(p.port, certs, "u:p") for p in procs[:2])
        macs, pages = _mdm_walk(m1, "")
        _check(len(macs) == 2500 and len(set(macs)) == 2500, "%d MACs" % len(set(macs)))
        bad, _ = _mdm_walk(m1, "querycriteria=compliance&value=false&")
        _check(len(bad) == 250, "%d non-compliant of 2500" % len(bad))
        # the same seed, the same devices: all but the check-in time, which is the start's
        same = [re.sub(rb"<lastCheckinTimeStamp>\d+</lastCheckinTimeStamp>", b"", p)
                for p in _mdm_walk(m2, "")[1]]
        _check(same == [re.sub(rb"<lastCheckinTimeStamp>\d+</lastCheckinTimeStamp>", b"", p)
                        for p in pages], "same seed, different devices")
        _check(_mdm_walk(m1, "")[1] == pages, "the same listing twice differs")
        st, body = m1.post("/_sim/flip", json.dumps({"count": 4, "compliant": False}))
        _check(st == 200, "flip: %d %r" % (st, body))
        flipped = [d["mac"] for d in json.loads(body)["flipped"]]
        _check(len(flipped) == 4 and not set(flipped) & set(bad), "flipped %r" % flipped)
        now_bad, _ = _mdm_walk(m1, "querycriteria=compliance&value=false&")
        _check(sorted(now_bad) == sorted(bad + flipped), "after the flip: %d" % len(now_bad))
        st, body = m1.get("/ciscoise/mdmapi/v3/devices/?querycriteria=macaddress&value=%s"
                          % flipped[0])
        _check(b"<status>false</status>" in body, "lookup after flip: %r" % body[:400])
        st, body = m1.post("/_sim/flip", json.dumps({"macs": flipped}))
        _check([d["compliant"] for d in json.loads(body)["flipped"]] == [True] * 4, body)
        _check(sorted(_mdm_walk(m1, "querycriteria=compliance&value=false&")[0]) == sorted(bad),
               "flipped back")
        for b in ('{"count": -1}', '{"macs": ["001A2C00FFFF"]}', '[1]', '{"compliant": 1}'):
            _check(m1.post("/_sim/flip", b)[0] == 400, "flip %s accepted" % b)
        sc = _Client(sccm.port, certs, "D\\u:p")
        cis = "SMS_G_System_CI_ComplianceState"
        systems = _sccm_walk(sc, "SMS_R_System", "ResourceId,MACAddresses")
        states = _sccm_walk(sc, cis, "ResourceID,ComplianceState")
        _check(len(systems) == 2500 and len({s["MACAddresses"][0] for s in systems}) == 2500,
               "%d systems" % len(systems))
        _check(sum(s["ComplianceState"] == 2 for s in states) == 250, "SCCM non-compliant")
        rid = states[0]["ResourceID"]  # index built before the flip, so the flip must drop it
        one = "/AdminService/wmi/%s?$filter=ResourceID%%20eq%%20%d&$select=ResourceID," \
              "ComplianceState" % (cis, rid)
        before = json.loads(sc.get(one)[1])["value"][0]["ComplianceState"]
        st, body = sc.post("/_sim/flip", json.dumps({"macs": ["00:50:57:00:00:00"]}))
        _check(st == 200 and json.loads(body)["flipped"][0]["compliant"] == (before != 1), body)
        after = json.loads(sc.get(one)[1])["value"][0]["ComplianceState"]
        listed = _sccm_walk(sc, cis, "ResourceID,ComplianceState")[0]["ComplianceState"]
        _check(after == listed == (1 if before == 2 else 2), "%d -> %d / %d"
               % (before, after, listed))
    finally:
        for p in procs:
            p.stop()


def _coa_request(code, ident, secret, attrs, with_ma=True):
    """A CoA/Disconnect request built here from the RFCs (hashlib/hmac), independent of the
    responder's C code."""
    if with_ma:
        attrs += bytes([80, 18]) + bytes(16)
    pkt = bytearray(struct.pack("!BBH", code, ident, 20 + len(attrs)) + bytes(16) + attrs)
    if with_ma:
        pkt[-16:] = hmac.new(secret, bytes(pkt), "md5").digest()
    pkt[4:20] = hashlib.md5(bytes(pkt) + secret).digest()
    return bytes(pkt)


def _reply_ok(reply, request, secret):
    """True when reply's Response Authenticator and Message-Authenticator are right."""
    if len(reply) < 20 or struct.unpack("!H", reply[2:4])[0] != len(reply):
        return False
    if hashlib.md5(reply[:4] + request[4:20] + reply[20:] + secret).digest() != reply[4:20]:
        return False
    off, ma = 20, False
    while off < len(reply):
        t, ln = reply[off], reply[off + 1]
        if t == 80:
            z = bytearray(reply)
            z[4:20] = request[4:20]
            z[off + 2:off + 18] = bytes(16)
            ma = hmac.new(secret, bytes(z), "md5").digest() == reply[off + 2:off + 18]
        off += ln
    return ma


@_no_valgrind
def case_bench_coa_responder(env):
    """bench/coa_responder ACKs CoA- and Disconnect-Requests with correct Response and
    Message-Authenticators (checked with Python's hashlib), answers radclient, drops requests
    with a wrong secret or Message-Authenticator, and records each packet's arrival."""
    binary = os.path.join(os.path.dirname(env.binary), "bench", "coa_responder")
    _check(os.access(binary, os.X_OK), "%s not built (make %s)" % (binary, binary))
    secret = b"bench-s3cret"
    out = os.path.join(tempfile.mkdtemp(prefix="mdmgw-coa-resp-"), "received.txt")
    resp = _Proc([binary, "--secret", secret.decode(), "--out", out])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    try:
        csi = bytes([31, 14]) + b"001A2C000009"
        t0 = int(time.time() * 1000)
        for code, with_ma in ((43, True), (40, True), (43, False)):
            req = _coa_request(code, 7, secret, csi, with_ma)
            s.sendto(req, ("127.0.0.1", resp.port))
            reply = s.recv(4096)
            _check(reply[0] == code + 1 and reply[1] == 7, "reply %r" % reply[:2])
            _check(_reply_ok(reply, req, secret), "bad authenticators in the reply to %d" % code)
        s.settimeout(0.5)
        broken = bytearray(_coa_request(43, 9, secret, csi))
        broken[-1] ^= 1  # the Message-Authenticator, then the authenticator made right again
        broken[4:20] = hashlib.md5(bytes(broken[:4]) + bytes(16) + bytes(broken[20:]) +
                                   secret).digest()
        for req in (_coa_request(43, 8, b"wrong", csi), bytes(broken), b"\x2b\x01\x00"):
            s.sendto(req, ("127.0.0.1", resp.port))
            try:
                s.recv(4096)
                raise AssertionError("answered a request it should drop: %r" % req[:4])
            except socket.timeout:
                pass
        r = subprocess.run(["radclient", "-r", "1", "-t", "3", "127.0.0.1:%d" % resp.port,
                            "disconnect", secret.decode()], input='Calling-Station-Id = '
                           '"00-1A-2C-00-00-0A"\n', capture_output=True, text=True, timeout=30)
        _check(r.returncode == 0 and "Disconnect-ACK" in r.stdout, "radclient: %s %s"
               % (r.stdout, r.stderr))
    finally:
        s.close()
        rc = resp.stop()
    _check(rc == 0, "responder exit %s" % rc)
    lines = open(out).read().splitlines()
    verdicts = [ln.split()[4] for ln in lines[:-1]]
    _check(verdicts == ["ack", "ack", "no-ma-ack", "bad-auth", "bad-ma", "bad-packet",
                        "no-ma-ack"], "records %r" % lines)
    _check(lines[-1] == "end 7 4 3", "last line %r" % lines[-1])
    _check(all(int(ln.split()[0]) >= t0 for ln in lines[:-1]), "arrival times %r" % lines)
    _check(lines[-2].split()[3] == "00-1A-2C-00-00-0A", "radclient's record %r" % lines[-2])
