"""The integration cases. Each `case_*` function takes the Env and raises on failure.

Golden files (tests/data/golden/NAME.req and NAME.res, in the spirit of curl's tests/data) are
black-box data: the request as sent, the exact status, checked headers and body bytes expected.
"""
import glob
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

from lib import CA, ROOT, Gateway, basic, free_port, tls_context

GOLDEN = os.path.join(ROOT, "tests", "data", "golden")


class Env:
    def __init__(self, binary, valgrind, regen):
        self.binary = binary
        self.valgrind = valgrind
        self.regen = regen
        self.demo = None

    def gateway(self, **kw):
        return Gateway(self.binary, valgrind=self.valgrind, **kw)


# The modules of cases beside this one, one a line (cases_cli's helpers are not cases).
CASE_MODULES = [
    "cases_acct",  # acct: RADIUS accounting (radclient) and the sessions admin API
    "cases_actions",
    "cases_bench",  # bench-reconcile's simulators and CoA responder
    "cases_cli",
    "cases_coa",  # the CoA dispatcher, MnT and webhook sinks
    "cases_coa_e2e",  # vendor change to CoA at a real FreeRADIUS
    "cases_mcms",
    "cases_mcms_actions",
    "cases_recon",
    "cases_sccm",
    "cases_snapshot",
    "cases_trans",  # trans: the change guard's release, block events
]


def all_cases():
    import importlib
    found = dict(globals())
    for name in CASE_MODULES:
        found.update(vars(importlib.import_module(name)))
    return [(n, f) for n, f in sorted(found.items()) if n.startswith("case_")]


def no_valgrind(fn):
    fn.skip_valgrind = True
    return fn


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def xml(r):
    check(r.header("Content-Type") == "application/xml; charset=utf-8",
          "content type %r" % r.header("Content-Type"))
    return ET.fromstring(r.body)


# --- golden files ------------------------------------------------------------------------------

def parse_req(path):
    raw = open(path, "rb").read()
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    method, target = lines[0].split(" ", 1)
    headers, account = {}, "demo"
    for line in lines[1:]:
        if not line.strip():
            continue
        k, _, v = line.partition(":")
        if k.strip().lower() == "account":
            account = v.strip()
        else:
            headers[k.strip()] = v.strip()
    return method, target, headers, (None if account == "none" else account), body or None


def parse_res(path):
    raw = open(path, "rb").read()
    head, _, body = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    headers = {}
    for line in lines[1:]:
        if line.strip():
            k, _, v = line.partition(":")
            headers[k.strip()] = v.strip()
    return int(lines[0]), headers, body


def case_golden_files(env):
    reqs = sorted(glob.glob(os.path.join(GOLDEN, "*.req")))
    check(len(reqs) >= 20, "expected the golden set, found %d" % len(reqs))
    bad = []
    for req in reqs:
        name = os.path.basename(req)[:-4]
        method, target, headers, account, body = parse_req(req)
        r = env.demo.request(method, target, user=account, body=body, headers=headers)
        res = req[:-4] + ".res"
        if env.regen:
            keep = "".join("%s: %s\n" % (k, r.header(k)) for k in ("Content-Type", "Allow",
                                                                   "WWW-Authenticate")
                           if r.header(k))
            with open(res, "wb") as f:
                f.write(("%d\n%s\n" % (r.status, keep)).encode() + r.body)
            continue
        status, want_headers, want_body = parse_res(res)
        if r.status != status:
            bad.append("%s: status %d, want %d\n%s" % (name, r.status, status, r.text))
            continue
        for k, v in want_headers.items():
            if r.header(k) != v:
                bad.append("%s: header %s = %r, want %r" % (name, k, r.header(k), v))
        if r.body != want_body:
            bad.append("%s: body differs:\n--- got\n%s\n--- want\n%s" % (
                name, r.text, want_body.decode()))
    check(not bad, "\n".join(bad))


# --- mdminfo and queries -----------------------------------------------------------------------

def case_mdminfo_versions(env):
    for asked, want in ((None, "1"), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "3"),
                        ("12345678901234567890", "3")):
        q = "" if asked is None else "?ise_api_version=" + asked
        for path in ("/ciscoise/mdminfo/", "/ciscoise/mdminfo"):
            x = xml(env.demo.request("GET", path + q))
            check(x.findtext("api_version") == want, "%s%s -> %s" % (path, q,
                                                                     x.findtext("api_version")))
            check(x.findtext("api_path") == "/ciscoise/mdmapi/v" + want, "api_path")
            for tag in ("vendor", "product_name", "product_version", "query_max_size"):
                check(x.findtext(tag), "missing %s" % tag)
    for bad in ("0", "-1", "abc", "", "1.5"):
        r = env.demo.request("GET", "/ciscoise/mdminfo/?ise_api_version=" + bad)
        check(r.status == 400, "version %r -> %d" % (bad, r.status))


def case_api_path_served(env):
    """Every api_path mdminfo advertises is really served."""
    for v in (1, 2, 3):
        x = xml(env.demo.request("GET", "/ciscoise/mdminfo/?ise_api_version=%d" % v))
        path = x.findtext("api_path")
        r = env.demo.request("GET", path + "/devices/?paging=0&querycriteria=macaddress"
                             "&value=0026B424FEB4&filter=all")
        check(r.status == 200, "%s -> %d" % (path, r.status))


def mac_query(gw, mac, v=3, user="demo"):
    return gw.request("GET", "/ciscoise/mdmapi/v%d/devices/?paging=0&querycriteria=macaddress"
                      "&value=%s&filter=all" % (v, mac), user=user)


def case_mac_forms(env):
    for form in ("0026B424FEB4", "0026b424feb4", "00:26:B4:24:FE:B4", "00-26-b4-24-fe-b4",
                 "0026.b424.feb4"):
        x = xml(mac_query(env.demo, form))
        devs = x.findall("deviceList/device")
        check(len(devs) == 1, "%s: %d devices" % (form, len(devs)))
        check(devs[0].findtext("macaddress") == form, "echo %r" % devs[0].findtext("macaddress"))
        check(devs[0].findtext("attributes/guid") == "1759c0fd-c8da-49e8-b14f-19d85acfacea",
              "guid")


def case_malformed_macs(env):
    for bad, word in (("0026B424FEB", "12 hex"), ("0026B424FEBG", "12 hex"),
                      ("01005E000001", "multicast"), ("FFFFFFFFFFFF", "broadcast"),
                      ("000000000000", "000000000000"), ("00:26:B4-24:FE:B4", "12 hex"),
                      ("%00", "")):
        r = mac_query(env.demo, bad)
        check(r.status == 400, "%s -> %d" % (bad, r.status))
        check(word in r.text, "%s: message %r" % (bad, r.text))


def case_unknown_device_is_empty_list(env):
    for v in (1, 2, 3):
        r = mac_query(env.demo, "0026B4000001", v=v)
        x = xml(r)
        check(r.status == 200, "status")
        check(x.find("deviceList") is not None and len(x.find("deviceList")) == 0,
              "not an empty deviceList: " + r.text)
        check((x.find("server_busy_wait_seconds") is not None) == (v == 3), "busy wait v%d" % v)


def case_every_criterion(env):
    gw = env.demo
    asks = [("udid", "00008030-001A2B3C4D5E802E", 2), ("imei", "356938035643809", 2),
            ("meid", "a1000049a3f7c2", 2), ("guid", "1759c0fd-c8da-49e8-b14f-19d85acfacea", 3),
            ("guidhn", "LT-FINANCE-07", 3), ("hostname", "lt-finance-07", 3),
            ("username", "ALICE", 1)]
    for crit, value, v in asks:
        r = gw.request("GET", "/ciscoise/mdmapi/v%d/devices/?paging=0&querycriteria=%s&value=%s"
                       "&filter=all" % (v, crit, value))
        x = xml(r)
        n = len(x.findall("deviceList/device"))
        check(n == (2 if crit == "username" else 1), "%s=%s: %d devices" % (crit, value, n))
    # A criterion newer than the path's version is refused, not guessed.
    r = gw.request("GET", "/ciscoise/mdmapi/v2/devices/?paging=0&querycriteria=guid&value=x")
    check(r.status == 400 and "version 3" in r.text, r.text)


def case_v1_path_forms(env):
    gw = env.demo
    x = xml(gw.request("GET", "/ciscoise/mdmapi/v1/devices/0/macaddress/0026B424FEB4/all"))
    check(len(x.findall("deviceList/device")) == 1, "v1 path form by MAC")
    check(x.find("deviceList/device/attributes/guid") is None, "v3 element on a v1 path")
    x = xml(gw.request("GET", "/ciscoise/mdmapi/v1/devices/0/all/"))
    check(len(x.findall("deviceList/device")) == 22, "v1 all devices")
    x = xml(gw.request("GET", "/ciscoise/mdmapi/v2/devices/0/compliance/false/all"))
    check(len(x.findall("deviceList/device")) == 9, "v2 path compliance=false")


def case_compliance_poll(env):
    x = xml(env.demo.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                             "compliance&value=false&filter=all"))
    devs = x.findall("deviceList/device")
    check(len(devs) == 9, "non-compliant: %d" % len(devs))
    for d in devs:
        check(d.findtext("attributes/compliance/status") == "false", "a compliant one listed")
    x = xml(env.demo.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                             "compliance&value=false&deviceidentifier=guid&filter=all"))
    for d in x.findall("deviceList/device"):
        check(d.find("guid") is not None and d.find("macaddress") is None, "guid mode keys")


def case_batchdevices(env):
    body = (b"<ise_api><macaddress>0026B424FEB4, 64:31:50:10:DA:60</macaddress>"
            b"<macaddress>0026B4000001</macaddress></ise_api>")
    for ctype in ("application/xml", "application/x-www-form-urlencoded"):
        r = env.demo.request("POST", "/ciscoise/mdmapi/v3/batchdevices/?paging=0&filter=all",
                             body=body, headers={"Content-Type": ctype})
        x = xml(r)
        macs = [d.findtext("macaddress") for d in x.findall("deviceList/device")]
        check(macs == ["0026B424FEB4", "64:31:50:10:DA:60"], "batch: %r" % macs)
    many = b"<ise_api>" + b"".join(b"<value>02AA%08X</value>" % i for i in range(5001)) + b"</ise_api>"
    r = env.demo.request("POST", "/ciscoise/mdmapi/v3/batchdevices/?paging=0", body=many)
    check(r.status in (400, 413), "5001 values -> %d" % r.status)


def case_xml_attacks_refused(env):
    laughs = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
              b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><ise_api><value>&b;</value></ise_api>')
    xxe = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           b'<ise_api><value>&e;</value></ise_api>')
    for body in (laughs, xxe):
        r = env.demo.request("POST", "/ciscoise/mdmapi/v3/batchdevices/?paging=0", body=body)
        check(r.status == 400, "attack body -> %d %s" % (r.status, r.text))
        check("root:" not in r.text, "file content leaked")


# The shared demo gateway must not wipe its devices: these target a MAC no demo MDM knows.
NO_SUCH_MAC = b"0026B4FFFF01"


def action_body(mac=NO_SUCH_MAC):
    return b"<ise_api><identifier><macaddress> %s </macaddress></identifier></ise_api>" % mac


def case_actions_all_forms_answer_false(env):
    gw = env.demo
    for target in ("/ciscoise/mdmapi/v3/action/?actionType=corporate_wipe",
                   "/ciscoise/mdmapi/v3/action/actionType=full_wipe",
                   "/ciscoise/mdmapi/v2/action?actionType=pin_lock"):
        r = gw.request("POST", target, user="wiper", body=action_body())
        x = xml(r)
        check(r.status == 200 and x.findtext("name") == "action", target)
        check(x.findtext("deviceList/device/macaddress") == "0026B4FFFF01", "mac echo")
        check(x.findtext("deviceList/device/result/action_status") == "false", "status")
        check("no MDM manages this device" in x.findtext("deviceList/device/result/"
                                                         "failure_reason"), "reason")
    boundary = "----mdmgwtest"
    mp = ("--%s\r\nContent-Disposition: form-data; name=\"file\"\r\nContent-Type: "
          "application/xml\r\n\r\n" % boundary).encode() + action_body() + \
        ("\r\n--%s--\r\n" % boundary).encode()
    r = gw.request("POST", "/ciscoise/mdmapi/v3/action/?actionType=pin_lock", user="wiper",
                   body=mp, headers={"Content-Type": "multipart/form-data; boundary=" + boundary})
    check(r.status == 200 and b"<macaddress>0026B4FFFF01</macaddress>" in r.body, r.text)
    r = gw.request("POST", "/ciscoise/mdmapi/v3/action/?actionType=format_c", user="wiper",
                   body=action_body())
    check(r.status == 400, "unknown action type")


# --- auth --------------------------------------------------------------------------------------

def case_auth_required(env):
    gw = env.demo
    r = gw.request("GET", "/ciscoise/mdminfo/", user=None)
    check(r.status == 401 and r.header("WWW-Authenticate", ).startswith("Basic realm="),
          "no credentials: %d" % r.status)
    r = gw.request("GET", "/ciscoise/mdminfo/", auth="Basic " + "bm9ib2R5Om5vcGU=")
    check(r.status == 401, "unknown user: %d" % r.status)
    r = gw.request("GET", "/ciscoise/mdminfo/", auth="Bearer abc")
    check(r.status == 401, "bearer: %d" % r.status)
    r = gw.request("GET", "/healthz", user=None)
    check(r.status == 200 and r.body == b"ok\n", "healthz without auth")
    check("mdmgw-demo" not in gw.log() and "bm9ib2R5" not in gw.log(), "credentials in log")


def case_wrong_role(env):
    gw = env.demo
    r = gw.request("GET", "/ciscoise/mdminfo/", user="wiper")
    check(r.status == 403, "action-only account querying: %d" % r.status)
    r = gw.request("POST", "/ciscoise/mdmapi/v3/action/?actionType=full_wipe", user="demo",
                   body=action_body())
    check(r.status == 403, "query account wiping: %d" % r.status)
    r = gw.request("POST", "/ciscoise/mdmapi/v3/action/?actionType=full_wipe", user="boss",
                   body=action_body())
    check(r.status == 200, "admin with action role: %d" % r.status)


def case_throttling_per_source_and_user(env):
    gw = env.gateway().start()
    try:
        import base64
        wrong = "Basic " + base64.b64encode(b"nac:wrong-password").decode()
        good = basic("nac")
        check(gw.request("GET", "/ciscoise/mdminfo/", auth=good).status == 200, "good first")
        for i in range(3):
            r = gw.request("GET", "/ciscoise/mdminfo/", auth=wrong)
            check(r.status == 401, "attempt %d: %d" % (i, r.status))
        r = gw.request("GET", "/ciscoise/mdminfo/", auth=wrong)
        check(r.status == 429 and int(r.header("Retry-After")) > 0, "throttled: %d" % r.status)
        # Verified credentials keep working: a typo elsewhere locks out no NAC node.
        check(gw.request("GET", "/ciscoise/mdminfo/", auth=good).status == 200, "cached good")
        check(gw.request("GET", "/ciscoise/mdminfo/", user="demo").status == 200, "other user")
    finally:
        check(gw.stop() == 0, "exit code")
        gw.cleanup()


# --- limits ------------------------------------------------------------------------------------

def case_body_too_large(env):
    big = b"<ise_api>" + b"<value>0026B424FEB4</value>" * 12000 + b"</ise_api>"
    r = env.demo.raw_request("POST", "/ciscoise/mdmapi/v3/batchdevices/?paging=0", body=big)
    check(r.status == 413, "body over max_body: %d" % r.status)
    # Chunked upload (no Content-Length to refuse early): cut while reading, still a 413.
    conn = env.demo.connect()
    try:
        conn.putrequest("POST", "/ciscoise/mdmapi/v3/batchdevices/?paging=0")
        conn.putheader("Authorization", basic("demo"))
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(big), 16384):
            part = big[i:i + 16384]
            conn.send(b"%x\r\n%s\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        r = conn.getresponse()
        check(r.status == 413, "chunked body over max_body: %d" % r.status)
    finally:
        conn.close()


def case_uri_and_headers_too_large(env):
    r = env.demo.request("GET", "/ciscoise/mdminfo/?x=" + "a" * 20000)
    check(r.status == 414, "long URI: %d" % r.status)
    r = env.demo.request("GET", "/ciscoise/mdminfo/", headers={"X-Big": "b" * 20000})
    check(r.status == 431, "big header: %d" % r.status)


def tls_socket(port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return tls_context().wrap_socket(raw, server_hostname="localhost")


@no_valgrind
def case_header_deadline_cuts_trickler(env):
    gw = env.demo
    s = tls_socket(gw.port)
    s.settimeout(1)
    request = b"GET /ciscoise/mdminfo/ HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: " + b"a" * 60
    t0 = time.monotonic()
    closed_at = None
    served_meanwhile = False
    for i, byte in enumerate(request):
        try:
            s.send(bytes([byte]))
        except OSError:
            closed_at = time.monotonic() - t0
            break
        if i == 1:
            served_meanwhile = mac_query(gw, "0026B424FEB4").status == 200
        try:
            if s.recv(1) == b"":
                closed_at = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            closed_at = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 10:
            break
    s.close()
    check(served_meanwhile, "another client was not served while one trickled")
    check(closed_at is not None and 1.5 <= closed_at <= 5, "trickler cut at %r s (deadline 2s)"
          % closed_at)


# --- paging ------------------------------------------------------------------------------------

def big_inventory(path, n):
    devs = []
    for i in range(n):
        d = {"id": "big-%05d" % i, "macs": ["02%010X" % (0x10000 + i)],
             "registered": True, "compliant": i % 3 != 0}
        if i % 3 == 0:
            d["failure_reason"] = "policy %d" % (i % 7)
        if i % 5 == 0:
            d["guid"] = "guid-%05d" % i
        devs.append(d)
    with open(path, "w") as f:
        json.dump({"devices": devs}, f)


def walk(gw, query, conn):
    cursor, seen, pages, biggest = 0, [], 0, 0
    while True:
        r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=%d&%sfilter=all"
                       % (cursor, query), conn=conn)
        check(r.status == 200, "page at %d: %d" % (cursor, r.status))
        x = ET.fromstring(r.body)
        devs = x.findall("deviceList/device")
        biggest = max(biggest, len(devs))
        seen += [d.findtext("macaddress") for d in devs]
        pages += 1
        cursor = int(x.findtext("paging_info"))
        check(0 <= cursor < 2 ** 31, "cursor %d" % cursor)
        if cursor == 0:
            return seen, pages, biggest
        check(pages < 100000, "walk does not end")


def case_paging_walks_12345_devices(env):
    d = tempfile.mkdtemp(prefix="mdmgw-inv-")
    inv = os.path.join(d, "inv.json")
    big_inventory(inv, 12345)
    for page in (5000, 7):
        gw = env.gateway(inventory=inv, overrides={"api": {"query_max_size": page}}).start()
        try:
            conn = gw.connect()
            seen, pages, biggest = walk(gw, "", conn)
            check(len(seen) == 12345 and len(set(seen)) == 12345, "all: %d seen" % len(seen))
            check(pages == -(-12345 // page) and biggest == page, "pages %d" % pages)
            seen, pages, biggest = walk(gw, "querycriteria=compliance&value=false&", conn)
            check(len(seen) == 4115 and len(set(seen)) == 4115, "non-compliant: %d" % len(seen))
            check(biggest <= page, "page of %d" % biggest)
            conn.close()
            r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=99999999&filter=all")
            check(r.status == 400, "cursor past the end: %d" % r.status)
        finally:
            check(gw.stop() == 0, "exit code")
            gw.cleanup()
    os.unlink(inv)
    os.rmdir(d)


# --- TLS ---------------------------------------------------------------------------------------

def s_client(port, extra):
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", CA] + extra
    p = subprocess.run(cmd, input=b"Q\n", stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def established(out):
    """s_client printed a negotiated cipher: the handshake completed."""
    return re.search(r"Cipher is (?!\(NONE\))\S+", out) is not None


def case_tls_versions(env):
    legacy = ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"]
    # Positive control: the very same client command succeeds against a server allowing 1.1.
    port = free_port()
    ctl = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port, "-cert",
                            os.path.join(ROOT, "certs", "server.pem"), "-key",
                            os.path.join(ROOT, "certs", "server-key.pem"), "-tls1_1",
                            "-cipher", "DEFAULT@SECLEVEL=0", "-naccept", "1"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        # s_server says ACCEPT once it listens; probing with a connection would use up -naccept.
        line = b""
        deadline = time.monotonic() + 30
        while b"ACCEPT" not in line and time.monotonic() < deadline:
            line = ctl.stdout.readline()
            if not line and ctl.poll() is not None:
                break
        ctl_rc, ctl_out = s_client(port, legacy)
    finally:
        ctl.kill()
        ctl.wait()
    check(ctl_rc == 0 and established(ctl_out) and "TLSv1.1" in ctl_out,
          "control handshake failed:\n" + ctl_out[-800:])
    rc, out = s_client(env.demo.port, legacy)
    check(rc != 0 and not established(out), "TLS 1.1 accepted:\n" + out[-800:])
    for version in ("-tls1_2", "-tls1_3"):
        rc, out = s_client(env.demo.port, [version])
        check(rc == 0 and established(out) and "Verify return code: 0 (ok)" in out,
              version + ":\n" + out[-800:])


# --- configuration -----------------------------------------------------------------------------

def case_check_config(env):
    gw = env.gateway()
    try:
        p = subprocess.run([env.binary, "check-config", "-c", gw.config_path],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        check(p.returncode == 0, "valid config: %s" % p.stdout)
        cfg = dict(gw.config)
        cfg["listen"] = dict(cfg["listen"], port=70000)
        bad = os.path.join(gw.dir, "bad.json")
        with open(bad, "w") as f:
            json.dump(cfg, f)
        for cmd in (["check-config", "-c", bad], ["run", "-c", bad]):
            p = subprocess.run([env.binary] + cmd, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            check(p.returncode == 1, "%s: exit %d" % (cmd[0], p.returncode))
            check(re.search(r"bad\.json: listen\.port: ", p.stdout.decode()),
                  "message: %s" % p.stdout)
    finally:
        gw.cleanup()


def case_plaintext_secret_needs_private_file(env):
    gw = env.gateway(overrides={"cache": {"hmac_key": "0123456789abcdef0123456789abcdef"}})
    try:
        os.chmod(gw.config_path, 0o644)
        p = subprocess.run([env.binary, "run", "-c", gw.config_path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        check(p.returncode == 1 and b"cache.hmac_key" in p.stdout, p.stdout.decode())
    finally:
        gw.cleanup()


# --- shutdown ----------------------------------------------------------------------------------

@no_valgrind
def case_sigterm_during_load(env):
    gw = env.gateway().start()
    stop = threading.Event()
    results = {"ok": 0, "refused": 0, "bad": []}
    lock = threading.Lock()

    def load():
        while not stop.is_set():
            try:
                r = mac_query(gw, "0026B424FEB4")
                x = ET.fromstring(r.body)  # a truncated body would not parse
                with lock:
                    if r.status == 200 and len(x.findall("deviceList/device")) == 1:
                        results["ok"] += 1
                    else:
                        results["bad"].append(r.status)
            except (OSError, ConnectionError, ssl.SSLError):
                with lock:
                    results["refused"] += 1
                time.sleep(0.01)
            except Exception as e:  # noqa: BLE001 - anything else is a broken answer
                with lock:
                    results["bad"].append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    t0 = time.monotonic()
    rc = gw.stop(signal.SIGTERM)
    took = time.monotonic() - t0
    stop.set()
    for t in threads:
        t.join()
    log = gw.log()
    gw.cleanup()
    fatal = [line for line in log.splitlines() if "atal" in line or "rror" in line]
    check(rc == 0, "exit code %s\n%s\n%s" % (rc, "\n".join(fatal[-10:]), log[-1500:]))
    check(took < 6, "took %.1fs to stop" % took)
    check(results["ok"] > 20, "too little load: %r" % results)
    check(not results["bad"], "broken answers during shutdown: %r" % results["bad"][:5])
    check("draining" in log and "stopped" in log, "shutdown not logged")


# --- the shared cache (memcached) --------------------------------------------------------------

from lib import Memcached, SilentServer  # noqa: E402

MAC = "0026B424FEB4"
LOOKUPS = 'mdmgw_adapter_lookups_total{adapter="inventory"}'


def cached_gateway(env, servers, **cache):
    c = {"servers": ["127.0.0.1:%d" % p for p in servers],
         "hmac_key": {"env": "MDMGW_TEST_HMAC_KEY"}, "connect_timeout": "50ms",
         "io_timeout": "50ms", "breaker_open": "1s", "retry_timeout": "1s"}
    c.update(cache)
    # the cases test the cache tiers on live lookups, not the reconciler's write-through
    return env.gateway(overrides={"cache": c, "reconciler": {"write_through": False}})


def case_metrics_need_admin(env):
    r = env.demo.request("GET", "/metrics", user="demo")
    check(r.status == 403, "query role reading metrics: %d" % r.status)
    m = env.demo.metrics()
    check("mdmgw_requests_total" in m and LOOKUPS in m, "metrics: %r" % list(m)[:10])


def case_purge_one_device(env):
    gw = env.demo
    purge = "/api/v1/cache/devices/00:26:b4:24:fe:b4"
    check(gw.request("DELETE", purge, user="boss").status == 200, "first purge")
    before = gw.metrics()[LOOKUPS]
    r0 = mac_query(gw, MAC)  # asks the adapter
    mac_query(gw, MAC)  # from the cache; the rendered answer is kept
    m = gw.metrics()
    check(m[LOOKUPS] == before + 1, "lookups %r, want %r" % (m[LOOKUPS], before + 1))
    hits = m["mdmgw_answer_cache_hits_total"]
    r2 = mac_query(gw, MAC)
    m = gw.metrics()
    check(m[LOOKUPS] == before + 1, "a repeated query reached the adapter")
    check(m["mdmgw_answer_cache_hits_total"] == hits + 1, "not served as rendered before")
    check(r2.body == r0.body, "the rendered answer differs from the one built fresh")
    r = gw.request("DELETE", purge, user="boss")
    check(r.status == 200 and json.loads(r.body)["removed"] >= 2, "purge: %s" % r.text)
    mac_query(gw, MAC)
    check(gw.metrics()[LOOKUPS] == before + 2, "after purge the adapter was not asked")
    r = gw.request("DELETE", purge, user="demo")
    check(r.status == 403, "purge with query role: %d" % r.status)
    r = gw.request("DELETE", "/api/v1/cache/devices/not%20an%20id", user="boss")
    check(r.status == 400, "bad identifier: %d" % r.status)


def case_memcached_two_tiers_and_instances(env):
    mc = Memcached().start()
    a = cached_gateway(env, [mc.port], l1_ttl="120s").start()  # valgrind is slow: no expiry
    b = cached_gateway(env, [mc.port], l1_ttl="0s").start()
    try:
        check(len(xml(mac_query(a, MAC)).findall("deviceList/device")) == 1, "a answers")
        ma = a.metrics()
        check(ma[LOOKUPS] == 1, "a asked the adapter %r times" % ma[LOOKUPS])
        # b shares memcached: it answers from there without asking its adapter.
        check(len(xml(mac_query(b, MAC)).findall("deviceList/device")) == 1, "b answers")
        mb = b.metrics()
        check(mb[LOOKUPS] == 0 and mb["mdmgw_cache_l2_hits_total"] >= 2,
              "b: lookups %r, l2 hits %r" % (mb[LOOKUPS], mb["mdmgw_cache_l2_hits_total"]))
        # a's second answer comes from its in-process tier.
        mac_query(a, MAC)
        check(a.metrics()["mdmgw_cache_l1_hits_total"] >= 2, "a: no L1 hits")
        # Garbage under the pointer key is a miss, counted, and overwritten.
        key = b"mdmgw:v1:inventory:mac:" + MAC.encode()
        check(mc.command(b"set %s 0 60 7\r\ngarbage\r\n" % key) == b"STORED\r\n", "set")
        check(len(xml(mac_query(b, MAC)).findall("deviceList/device")) == 1, "after garbage")
        mb = b.metrics()
        check(mb["mdmgw_cache_bad_values_total"] >= 1, "bad value not counted")
        check(b'"t":"' in mc.command(b"get %s\r\n" % key), "garbage not overwritten")
    finally:
        for g in (a, b):
            check(g.stop() == 0, "exit code\n" + g.log()[-2000:])
            g.cleanup()
        mc.stop()


def case_memcached_killed_and_restarted(env):
    mc = Memcached().start()
    gw = cached_gateway(env, [mc.port], l1_ttl="1s").start()
    try:
        conn = gw.connect()
        check(mac_query(gw, MAC).status == 200, "first")
        mc.stop()
        t0 = time.monotonic()
        for i in range(40):  # memcached gone: every answer still comes (L1, then the vendor)
            r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                           "macaddress&value=%s&filter=all" % MAC, conn=conn)
            check(r.status == 200 and b"<device>" in r.body, "query %d while down: %d" %
                  (i, r.status))
            time.sleep(0.05)
        check(time.monotonic() - t0 < 30, "queries slowed down too much while memcached down")
        m = gw.metrics()
        check(m["mdmgw_cache_l2_errors_total"] >= 1 or m["mdmgw_cache_breaker_opens_total"] >= 1,
              "memcached failures not counted")
        mc = Memcached(mc.port).start()  # back, empty
        time.sleep(2.5)  # past retry_timeout and breaker_open
        conn.close()  # idle past header_timeout: the gateway has closed it
        conn = gw.connect()
        for i in range(5):
            r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                           "macaddress&value=%s&filter=all" % MAC, conn=conn)
            check(r.status == 200 and b"<device>" in r.body, "after restart %d" % i)
            time.sleep(0.6)
        check(b"VALUE mdmgw:v1:inventory:mac:" in
              mc.command(b"get mdmgw:v1:inventory:mac:%s\r\n" % MAC.encode()),
              "memcached not filled again after its restart")
        conn.close()
    finally:
        check(gw.stop() == 0, "exit code\n" + gw.log()[-2000:])
        gw.cleanup()
        mc.stop()


def case_memcached_that_never_answers(env):
    silent = SilentServer()
    gw = cached_gateway(env, [silent.port]).start()
    try:
        t0 = time.monotonic()
        for i in range(30):
            value = "02AB%08X" % i  # distinct cold keys: every one would go to memcached
            r = mac_query(gw, value)
            check(r.status == 200, "query %d: %d" % (i, r.status))
        took = time.monotonic() - t0
        m = gw.metrics()
        check(m["mdmgw_cache_breaker_opens_total"] >= 1, "breaker never opened: %r" % {
            k: v for k, v in m.items() if "cache" in k})
        check(took < 60, "30 queries took %.1fs" % took)
    finally:
        check(gw.stop() == 0, "exit code\n" + gw.log()[-2000:])
        gw.cleanup()
        silent.stop()


# --- ha: the reconciler's leader lease in memcached (gateway/recon/lease.c) ---------------------------

def case_ha_lease_one_leader_then_takeover(env):
    mc = Memcached().start()
    ha = {"lease_ttl": "2s"}
    a = env.gateway(overrides={"cache": {"servers": ["127.0.0.1:%d" % mc.port],
                                         "hmac_key": {"env": "MDMGW_TEST_HMAC_KEY"}},
                               "ha": ha}).start()
    b = env.gateway(overrides={"cache": {"servers": ["127.0.0.1:%d" % mc.port],
                                         "hmac_key": {"env": "MDMGW_TEST_HMAC_KEY"}},
                               "ha": ha}).start()
    try:
        check("now leads the reconciler, epoch 1" in a.log(), "a leads first:\n" + a.log())
        check(b"reconciler:lease" in mc.command(b"get mdmgw:reconciler:lease\r\n"),
              "no lease in memcached")
        time.sleep(3)  # past a TTL: a renewed, b never took it
        check("now leads" not in b.log(), "b leads too:\n" + b.log())
        a.stop(signal.SIGKILL)  # a crash: nobody gives the lease up
        limit = time.monotonic() + (30 if env.valgrind else 6)
        while "now leads the reconciler, epoch 2" not in b.log() and time.monotonic() < limit:
            time.sleep(0.1)
        check("now leads the reconciler, epoch 2" in b.log(), "no take-over:\n" + b.log())
    finally:
        for g in (a, b):
            g.stop()
            g.cleanup()
        mc.stop()


# --- the SCCM AdminService simulator (tests/sim) --------------------------------------------------

def case_sccm_sim_speaks_adminservice(env):
    """The simulator the SCCM adapter is tested against, checked with the real curl: the URL
    forms of adapters/sccm_rules.h, Basic and NTLMv2 (a real client's exchange), paging, the
    $filter grammar, fault switches, counters, and a certificate from another CA. The gateway is
    not involved."""
    import shutil
    import sys
    sim_dir = os.path.join(ROOT, "tests", "sim")
    tmp = tempfile.mkdtemp(prefix="mdmgw-sccm-sim-")
    user, password = "CORP\\svc-ise", "S3cret!pw 'x'"
    procs = []

    def start(cert, key, *extra):
        p = subprocess.Popen([sys.executable, os.path.join(sim_dir, "sccm_sim.py"), "--port", "0",
                              "--cert", os.path.join(tmp, cert), "--key", os.path.join(tmp, key),
                              "--data", os.path.join(sim_dir, "sccm_data.json"), "--user", user,
                              "--password", password] + list(extra),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(p)
        line, limit = b"", time.monotonic() + 15
        while not line.endswith(b"\n"):
            left = limit - time.monotonic()
            check(left > 0 and p.poll() is None, "simulator not READY: %r" % line)
            import select
            if select.select([p.stdout], [], [], left)[0]:
                c = os.read(p.stdout.fileno(), 1)
                if not c:
                    raise AssertionError("simulator exited before READY: %r" % p.stderr.read())
                line += c
        m = re.fullmatch(rb"READY (\d+)\n", line)
        check(m, "first line %r" % line)
        return p, int(m.group(1))

    def stop(p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        try:
            return p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise AssertionError("simulator did not stop on SIGTERM")

    def curl(url, *opts, cacert="ca.pem", creds=True):
        out = os.path.join(tmp, "body")
        cmd = ["curl", "-sS", "-g", "--max-time", "10", "--cacert", os.path.join(tmp, cacert),
               "-o", out, "-w", "%{http_code}"] + list(opts)
        if creds and not any(o.startswith("-u") for o in opts):
            cmd += ["-u", "%s:%s" % (user, password)]
        r = subprocess.run(cmd + [url], capture_output=True, timeout=30)
        body = open(out, "rb").read() if os.path.exists(out) else b""
        if os.path.exists(out):
            os.unlink(out)
        return r.returncode, int(r.stdout or b"0"), body

    def ok_json(url, *opts, **kw):
        rc, code, body = curl(url, *opts, **kw)
        check(rc == 0 and code == 200, "%s: curl rc %d HTTP %d %r" % (url, rc, code, body[:300]))
        doc = json.loads(body)
        check(doc["@odata.context"].startswith("https://127.0.0.1:"), "context %r" % doc)
        return doc

    try:
        rc = subprocess.run(["bash", os.path.join(sim_dir, "make_certs.sh"), tmp],
                            capture_output=True, timeout=60)
        check(rc.returncode == 0, "make_certs.sh: %r" % rc.stderr)
        sim, port = start("server.pem", "server-key.pem", "--page-size", "2", "--auth", "both")
        base = "https://127.0.0.1:%d/AdminService" % port
        ctl = "https://127.0.0.1:%d/_sim/" % port
        t0 = time.monotonic()

        # sccm_url_system_by_mac's exact form, Basic: one row, with the unknown keys
        sel = ("ResourceId,Name,MACAddresses,Client,Active,Obsolete,Decommissioned,"
               "SMSUniqueIdentifier")
        by_mac = (base + "/wmi/SMS_R_System?$filter=MACAddresses/any(m:%20m%20eq%20'{}')"
                  "&$select=" + sel)
        doc = ok_json(by_mac.format("00:50:56:A1:00:01"))
        check([r["ResourceId"] for r in doc["value"]] == [16777220], "by MAC %r" % doc)
        row = doc["value"][0]
        check(row["Name"] == "PC-COMPLIANT" and "@odata.etag" in row and
              row["SMSUniqueIdentifier"].startswith("GUID:") and "IPAddresses" not in row,
              "row %r ($select honoured, unknown keys kept)" % row)
        check("@odata.nextLink" not in doc, "a one-row answer has no nextLink")
        doc = ok_json(by_mac.format("00:50:56:a1:00:0a"))  # obsolete duplicates; WQL ignores case
        check(sorted((r["ResourceId"], r["Obsolete"]) for r in doc["value"]) ==
              [(16777210, 1), (16777228, 0)], "duplicates %r" % doc)
        check(ok_json(by_mac.format("00:50:56:A1:00:FF"))["value"] == [], "not registered")
        check(ok_json(by_mac.format("00:50:56:A1:00:18"))["value"] == [],
              "NIC-only MAC in R_System")
        doc = ok_json(base + "/wmi/SMS_G_System_NETWORK_ADAPTER?$filter=MACAddress%20eq%20"
                      "'00:50:56:A1:00:18'&$select=ResourceID,MACAddress")
        check([(r["ResourceID"], r["MACAddress"]) for r in doc["value"]] ==
              [(16777227, "00:50:56:A1:00:18")], "NIC by MAC %r" % doc)
        doc = ok_json(base + "/wmi/SMS_G_System_CI_ComplianceState?$filter=ResourceID%20eq%20"
                      "16777221&$select=ResourceID,CI_UniqueID,ComplianceState,"
                      "LocalizedDisplayName")
        check(sorted(r["ComplianceState"] for r in doc["value"]) == [1, 2], "CI %r" % doc)
        doc = ok_json(base + "/wmi/SMS_G_System_CH_ClientSummary?$filter=ResourceID%20eq%20"
                      "16777225&$select=ResourceID,LastPolicyRequest")
        check(doc["value"] == [], "no client summary %r" % doc)
        doc = ok_json(base + "/wmi/SMS_G_System_CH_ClientSummary?$filter=ResourceID%20eq%20"
                      "16777220&$select=ResourceID,LastPolicyRequest")
        check(doc["value"][0]["LastPolicyRequest"] == "20261120093015.123000+000", "WMI date")
        # the grammar: whitespace, parentheses, or/and, '' escapes, a fully percent-encoded query
        doc = ok_json(base + "/wmi/SMS_R_System?$filter=(%20Name%20eq%20'PC-ERROR'or(name%20eq"
                      "%20'O''Brien'%20and%20CLIENT%20eq%201))&$select=resourceid")
        check([r["ResourceId"] for r in doc["value"]] == [16777223], "grammar %r" % doc)
        doc = ok_json(base + "/wmi/SMS_R_System?%24filter=MACAddresses%2Fany%28x%3A+x+eq+%27"
                      "00%3A50%3A56%3AA1%3A00%3A07%27%29")
        check([r["Name"] for r in doc["value"]] == ["PC-MULTINIC"], "percent-decoding %r" % doc)
        for bad in ("Name%20ne%20'x'", "startswith(Name,'PC')", "Client%20eq%20'1'",
                    "Nonexistent%20eq%201", "MACAddresses%20eq%20'x'", "Name%20eq%20'open",
                    "(Name%20eq%20'a'"):
            rc, code, body = curl(base + "/wmi/SMS_R_System?$filter=" + bad)
            check(code == 400 and "message" in json.loads(body)["error"],
                  "bad $filter %s: %d %r" % (bad, code, body))
        for route in ("/wmi/$metadata", "/v1.0/$metadata"):
            rc, code, body = curl(base + route)
            check(code == 200 and b"SMS_G_System_CH_ClientSummary" in body, route)

        # paging (--page-size 2): follow nextLink to the end
        url, ids, pages = base + "/wmi/SMS_R_System?$select=ResourceId,Name", [], 0
        while url:
            doc = ok_json(url)
            pages += 1
            check(len(doc["value"]) <= 2, "page of %d rows" % len(doc["value"]))
            ids += [r["ResourceId"] for r in doc["value"]]
            url = doc.get("@odata.nextLink")
            check(url is None or url.startswith(base + "/wmi/SMS_R_System?"), "nextLink %r" % url)
        check(pages == 5 and len(ids) == 10 and len(set(ids)) == 10, "paging %d %r" % (pages, ids))

        # authentication: Basic wrong, NTLM right and wrong (curl's own NTLMv2), counted
        rc, code, _ = curl(ctl + "reset", "-X", "POST", creds=False)
        check(code == 200, "reset")
        rc, code, _ = curl(by_mac.format("00:50:56:A1:00:01"), "-u", user + ":wrong")
        check(code == 401, "Basic, wrong password: %d" % code)
        rc, code, _ = curl(by_mac.format("00:50:56:A1:00:01"), creds=False)
        check(code == 401, "no credentials: %d" % code)
        doc = ok_json(by_mac.format("00:50:56:A1:00:02"), "--ntlm", "-u",
                      "%s:%s" % (user, password))
        check([r["ResourceId"] for r in doc["value"]] == [16777221], "NTLM row %r" % doc)
        rc, code, _ = curl(by_mac.format("00:50:56:A1:00:02"), "--ntlm", "-u", user + ":wrong")
        check(code == 401, "NTLM, wrong password: %d" % code)
        rc, code, _ = curl(by_mac.format("00:50:56:A1:00:02"), "--ntlm", "-u",
                           "CORP\\someone:" + password)
        check(code == 401, "NTLM, wrong user: %d" % code)
        rc, code, body = curl(ctl + "counts", creds=False)
        counts = json.loads(body)["counts"]
        # 401, 401, then NTLM right (challenge 401 + 200), wrong password and wrong user
        # (2 x 401 each)
        check(counts["by_route_status"] == {"SMS_R_System": {"401": 7, "200": 1}} and
              counts["requests"] == 8 and counts["connections"] >= 5, "counts %r" % counts)

        # faults, switched at run time
        def fault(name, value):
            rc, code, body = curl(ctl + "fault?name=%s&value=%s" % (name, value), "-X", "POST",
                                  creds=False)
            check(code == 200, "fault %s=%s: %d %r" % (name, value, code, body))
        fault("status", 500)
        rc, code, body = curl(by_mac.format("00:50:56:A1:00:01"))
        check(code == 500 and "error" in json.loads(body), "status fault %d" % code)
        fault("status", 403)
        check(curl(base + "/wmi/$metadata")[1] == 403, "403 on $metadata")
        rc, code, body = curl(ctl + "fault?name=status&value=302", "-X", "POST", creds=False)
        check(code == 400, "bad fault value accepted")
        rc, code, _ = curl(ctl + "reset", "-X", "POST", creds=False)
        check(curl(by_mac.format("00:50:56:A1:00:01"))[1] == 200, "after reset")
        fault("latency", 400)
        t1 = time.monotonic()
        check(curl(by_mac.format("00:50:56:A1:00:01"))[1] == 200, "latency")
        check(time.monotonic() - t1 >= 0.4, "latency fault not applied")
        fault("latency", 0)
        fault("garbage", 1)
        rc, code, body = curl(by_mac.format("00:50:56:A1:00:01"))
        try:
            json.loads(body)
            check(False, "garbage fault answered JSON")
        except ValueError:
            pass
        fault("garbage", 0)
        fault("huge", 20)
        rc, code, body = curl(by_mac.format("00:50:56:A1:00:01"))
        check(code == 200 and len(body) > 20 << 20, "huge body %d bytes" % len(body))
        fault("huge", 0)
        fault("stall", 1)
        t1 = time.monotonic()
        rc, code, body = curl(by_mac.format("00:50:56:A1:00:01"), "--max-time", "1")
        check(rc == 28 and time.monotonic() - t1 < 5, "stalled body: curl rc %d" % rc)
        rc, code, body = curl(ctl + "counts", creds=False)
        snap = json.loads(body)
        check(snap["faults"] == {"stall": 1}, "faults %r" % snap["faults"])
        check(snap["counts"]["by_route"]["SMS_R_System"] == 5, "counts %r" % snap)
        check(stop(sim) == 0, "simulator exit code (SIGTERM with a stalled answer pending)")

        # a server certificate from another CA: refused when trusting ca.pem only
        other, oport = start("other-server.pem", "other-server-key.pem")
        url = "https://127.0.0.1:%d/AdminService/wmi/$metadata" % oport
        rc, code, _ = curl(url)
        check(rc == 60 and code == 0, "other CA accepted: curl rc %d HTTP %d" % (rc, code))
        rc, code, _ = curl(url, cacert="other-ca.pem")
        check(rc == 0 and code == 200, "other CA server itself: rc %d HTTP %d" % (rc, code))
        check(stop(other) == 0, "other simulator exit code")
        check(time.monotonic() - t0 < 30, "took %.1fs" % (time.monotonic() - t0))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            p.stdout.close()
            p.stderr.close()
        shutil.rmtree(tmp, ignore_errors=True)


def case_mdm_sim_speaks_ise_api(env):
    """The cloud MDM simulator (tests/sim/mdm_sim.py), checked with the real curl: mdminfo
    negotiation, every criterion per version, the v1 path form, paging by paging_info, batch,
    actions recorded exactly once, capitalised (Intune) and non-compliant-only modes, 401 / 403 /
    instance 404, every fault switch, and certificates from another CA or expired. The gateway
    is not involved."""
    import shutil
    from lib import MdmSim
    tmp = tempfile.mkdtemp(prefix="mdmgw-mdm-sim-")
    log = os.path.join(tmp, "actions.jsonl")
    sims = []

    def start(**kw):
        if sims:
            kw.setdefault("certs_dir", sims[0].dir)
        s = MdmSim(**kw)
        sims.append(s)
        return s

    def curl(sim, url, *opts, creds=True, cacert="ca.pem", max_time=10):
        out, hdr = os.path.join(tmp, "body"), os.path.join(tmp, "headers")
        cmd = ["curl", "-sS", "-g", "--max-time", str(max_time), "--cacert",
               os.path.join(sim.dir, cacert), "-o", out, "-D", hdr, "-w", "%{http_code}"]
        if creds:
            cmd += ["-u", "%s:%s" % (sim.user, sim.password)]
        r = subprocess.run(cmd + list(opts) + [url], capture_output=True, timeout=60)
        res = {"rc": r.returncode, "code": int(r.stdout or b"0"), "stderr": r.stderr,
               "body": b"", "headers": {}}
        for f in (out, hdr):
            if os.path.exists(f):
                data = open(f, "rb").read()
                os.unlink(f)
                if f == out:
                    res["body"] = data
                else:
                    for line in data.decode("latin-1").split("\r\n"):
                        k, sep, v = line.partition(":")
                        if sep:
                            res["headers"][k.strip().lower()] = v.strip()
        return res

    def ok_xml(sim, url, *opts, **kw):
        r = curl(sim, url, *opts, **kw)
        check(r["rc"] == 0 and r["code"] == 200, "%s: curl rc %d HTTP %d %r %r" % (
            url, r["rc"], r["code"], r["stderr"], r["body"][:300]))
        check(r["headers"].get("content-type") == "application/xml; charset=utf-8",
              "content type %r" % r["headers"])
        return ET.fromstring(r["body"])

    def devs(root):
        """[(identifier tag, identifier value, attributes element)] of a devices answer."""
        out = []
        for d in root.find("deviceList"):
            ident = [c for c in d if c.tag != "attributes"]
            out.append((ident[0].tag if ident else None, ident[0].text if ident else None,
                        d.find("attributes")))
        return out

    try:
        sim = start(instance="acme", query_max_size=25, action_log=log)
        api = sim.base + "/ciscoise/mdmapi"
        t0 = time.monotonic()

        # mdminfo: min(N, 3), no parameter is 1, 0 or junk is 400
        for q, v in (("", 1), ("?ise_api_version=2", 2), ("?ise_api_version=3", 3),
                     ("?ise_api_version=9", 3)):
            root = ok_xml(sim, sim.base + "/ciscoise/mdminfo/" + q)
            check(root.findtext("name") == "mdminfo" and root.findtext("api_version") == str(v)
                  and root.findtext("api_path") == "/acme/ciscoise/mdmapi/v%d" % v and
                  root.findtext("query_max_size") == "25" and root.findtext("vendor") == "Cisco",
                  "mdminfo %s: %r" % (q, ET.tostring(root)))
        check(ok_xml(sim, sim.base + "/ciscoise/mdminfo").findtext("api_version") == "1",
              "no trailing slash")
        for q in ("0", "-1", "x"):
            r = curl(sim, sim.base + "/ciscoise/mdminfo/?ise_api_version=" + q)
            check(r["code"] == 400, "ise_api_version=%s: %d" % (q, r["code"]))

        # 401 (with the challenge), instance 404
        r = curl(sim, sim.base + "/ciscoise/mdminfo/", creds=False)
        check(r["code"] == 401 and r["headers"].get("www-authenticate", "").startswith("Basic "),
              "no credentials %r" % r)
        r = curl(sim, sim.base + "/ciscoise/mdminfo/", "-u", sim.user + ":wrong", creds=False)
        check(r["code"] == 401, "wrong password %d" % r["code"])
        for url in (sim.root + "/ciscoise/mdminfo/", sim.root + "/other/ciscoise/mdminfo/",
                    api + "/v4/devices/"):
            check(curl(sim, url)["code"] == 404, "instance/path 404: " + url)

        # every criterion, in the versions that have it
        q = api + "/v%d/devices/?paging=0&querycriteria=%s&value=%s&filter=all"
        for v, crit, val, want in (
                (1, "macaddress", "F018983A4B5C", ["F018983A4B5C"]),
                (3, "macaddress", "f0:18:98:3a:4b:5c", ["F018983A4B5C"]),
                (3, "macaddress", "0026-B424-FEB5", ["0026B424FEB5"]),  # a second NIC
                (3, "macaddress", "0026B4000001", []),  # unknown: 200, empty list
                (2, "udid", "00008110-000C1D2E3F40801E", ["A483E7445566"]),
                (2, "imei", "490154203237518", ["3C286D112233"]),
                (2, "meid", "99000112233445", ["5CF938A1B2C3"]),
                (1, "username", "alice", ["F018983A4B5C", "0026B424FEB4"]),
                (3, "guid", "1759C0FD-C8DA-49E8-B14F-19D85ACFACEA", ["0026B424FEB4"]),
                (3, "guidhn", "erin-phone", ["3C286D112233"]),
                (3, "hostname", "PC-ALICE", ["0026B424FEB4"])):
            root = ok_xml(sim, q % (v, crit, val))
            got = [i[1] for i in devs(root)]
            check(got == want and root.findtext("api_version") == str(v),
                  "%s=%s v%d: %r" % (crit, val, v, got))
        for v, crit, val in ((1, "udid", "x"), (2, "guid", "x"), (3, "serial", "x"),
                             (3, "macaddress", "nonsense"), (3, "compliance", "maybe")):
            check(curl(sim, q % (v, crit, val))["code"] == 400, "%s on v%d" % (crit, v))
        root = ok_xml(sim, api + "/v1/devices/0/macaddress/3C286D112233/all")
        check([i[1] for i in devs(root)] == ["3C286D112233"], "v1 path form")
        # version shapes: v2 has no v3-only elements, v3 has them
        a2 = devs(ok_xml(sim, q % (2, "imei", "490154203237518")))[0][2]
        r3 = ok_xml(sim, q % (3, "imei", "490154203237518"))
        a3 = devs(r3)[0][2]
        check(a2.find("guid") is None and a2.find("lastCheckinTimeStamp") is None and
              a3.findtext("guid") == "4d0c9f2a-7b61-4e38-9d12-5a6b7c8d9e0f" and
              a3.findtext("jail_broken") == "true" and
              a3.findtext("compliance/failure_reason") == "Device is jail-broken (rooted)" and
              r3.findtext("server_busy_wait_seconds") == "0", "v2/v3 shapes")
        unreg = devs(ok_xml(sim, q % (3, "macaddress", "484BAA987654")))[0][2]
        check(unreg.findtext("register_status") == "false" and
              unreg.find("compliance") is None, "unregistered device")
        r = curl(sim, q % (3, "macaddress", "0026B424FEB4"))
        check(b"Baseline &quot;Domain-Members&quot; non-compliant &amp; &lt;policy 3&gt;" in
              r["body"], "escaping as the gateway writes it")

        # compliance listings; guid mode (a device without a GUID is listed by its MAC)
        nc = devs(ok_xml(sim, q % (3, "compliance", "false")))
        check(len(nc) == 15 and all(a.findtext("compliance/status") == "false"
                                    for _, _, a in nc), "compliance=false: %d" % len(nc))
        check(len(devs(ok_xml(sim, q % (2, "compliance", "true")))) == 25, "compliance=true")
        root = ok_xml(sim, q % (3, "compliance", "false") + "&deviceidentifier=guid")
        check(all(t == "guid" for t, _, _ in devs(root)), "guid mode")
        first = devs(ok_xml(sim, api + "/v3/devices/?paging=0&deviceidentifier=guid&filter=all"))
        check(("macaddress", "10DDB1CAFE01") in [(t, v) for t, v, _ in first] and
              ("guid", "b1f6a2e0-1c3d-4e5f-8a9b-0c1d2e3f4a5b") in [(t, v) for t, v, _ in first],
              "no-GUID device in guid mode")

        # paging walk over all 67 devices, 25 a page, cursor re-sent verbatim
        cursor, macs, cursors = "0", [], []
        while True:
            root = ok_xml(sim, api + "/v3/devices/?paging=%s&filter=all" % cursor)
            page = devs(root)
            check(len(page) <= 25, "page of %d" % len(page))
            macs += [i[1] for i in page]
            cursor = root.findtext("paging_info")
            cursors.append(cursor)
            if cursor == "0":
                break
        check(cursors == ["25", "50", "0"] and len(macs) == 67 and len(set(macs)) == 67,
              "paging %r %d" % (cursors, len(macs)))
        check(len(devs(ok_xml(sim, api + "/v3/devices/?paging=9999&filter=all"))) == 0,
              "past the end")
        check(curl(sim, api + "/v3/devices/?paging=abc&filter=all")["code"] == 400, "bad cursor")

        # batchdevices: every <value>/<macaddress> text node, comma separated
        root = ok_xml(sim, api + "/v3/batchdevices/?paging=0&querycriteria=macaddress&filter=all",
                      "-X", "POST", "-H", "Content-Type: application/x-www-form-urlencoded",
                      "--data-binary", "<ise_api><value>0026B424FEB4</value><value>F018983A4B5C,"
                      "0026B4000001</value><macaddress>3c:28:6d:11:22:33</macaddress></ise_api>")
        check([i[1] for i in devs(root)] == ["0026B424FEB4", "F018983A4B5C", "3C286D112233"],
              "batch %r" % devs(root))

        # actions: accepted ones logged exactly once; refusals answered false, not logged
        def action(atype, body, *opts, form="?actionType="):
            return ok_xml(sim, api + "/v3/action/" + form + atype, "-X", "POST", *(
                opts or ("--data-binary", body)))

        def result(root):
            d = root.find("deviceList/device")
            return (d[0].tag, d[0].text, d.findtext("result/action_status"),
                    d.findtext("result/failure_reason"))
        mac_body = "<ise_api><identifier><macaddress> %s </macaddress></identifier></ise_api>"
        check(result(action("pin_lock", mac_body % "a4:83:e7:44:55:66")) ==
              ("macaddress", "A483E7445566", "true", ""), "pin_lock accepted")
        check(result(action("full_wipe", mac_body % "5CF938A1B2C3"))[2:] ==
              ("false", "full wipe is not allowed on a personal device"), "personal full wipe")
        check(result(action("corporate_wipe", mac_body % "0026B4000001"))[2:] ==
              ("false", "unknown device"), "unknown device")
        check(result(action("corporate_wipe", mac_body % "484BAA987654"))[2:] ==
              ("false", "device is not enrolled"), "unregistered device")
        guid_body = ("<ise_api><identifier><guid>6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e</guid>"
                     "</identifier></ise_api>")
        check(result(action("corporate_wipe", None, "--form-string", "xml=" + guid_body,
                            form="actionType="))[:3] ==
              ("guid", "6b7c8d9e-0f1a-4b2c-9d3e-4f5a6b7c8d9e", "true"), "multipart, guid")
        for bad in ("format_disk", ""):
            check(curl(sim, api + "/v3/action/?actionType=" + bad, "-X", "POST", "--data-binary",
                       mac_body % "A483E7445566")["code"] == 400, "actionType %r" % bad)
        check(curl(sim, api + "/v3/action/?actionType=pin_lock", "-X", "POST",
                   "--data-binary", "<ise_api/>")["code"] == 400, "no identifier")
        lines = [json.loads(x) for x in open(log)]
        check([(x["action"], x["macaddress"]) for x in lines] ==
              [("pin_lock", "A483E7445566"), ("corporate_wipe", "5CF938A1B2C3")] and
              [x["seq"] for x in lines] == [1, 2], "action log %r" % lines)
        r = curl(sim, sim.root + "/_sim/actions", creds=False)
        check([x["seq"] for x in json.loads(r["body"])["actions"]] == [1, 2], "_sim/actions")

        # faults, set at run time through the control route
        def fault(name, value):
            r = curl(sim, sim.root + "/_sim/fault?name=%s&value=%s" % (name, value), "-X",
                     "POST", creds=False)
            check(r["code"] == 200, "fault %s=%s: %r" % (name, value, r))
        mac_q = q % (3, "macaddress", "F018983A4B5C")
        check(curl(sim, sim.root + "/_sim/reset", "-X", "POST", creds=False)["code"] == 200,
              "reset")
        for st in (401, 403, 404, 500):
            fault("status", st)
            r = curl(sim, mac_q)
            check(r["code"] == st and ET.fromstring(r["body"]).findtext("status") == str(st),
                  "status fault %d: %r" % (st, r))
            check(st != 401 or "www-authenticate" in r["headers"], "401 fault challenge")
        check(curl(sim, sim.root + "/_sim/fault?name=status&value=302", "-X", "POST",
                   creds=False)["code"] == 400, "bad fault value accepted")
        fault("status", 0)
        fault("throttle", 7)
        r = curl(sim, sim.base + "/ciscoise/mdminfo/")
        check(r["code"] == 429 and r["headers"].get("retry-after") == "7", "429 %r" % r)
        fault("throttle", 0)
        fault("latency", 400)
        t1 = time.monotonic()
        ok_xml(sim, mac_q)
        check(time.monotonic() - t1 >= 0.4, "latency fault not applied")
        fault("latency", 0)
        fault("server_busy", 30)
        check(ok_xml(sim, mac_q).findtext("server_busy_wait_seconds") == "30", "server_busy")
        check(ok_xml(sim, q % (2, "macaddress", "F018983A4B5C")).find(
            "server_busy_wait_seconds") is None, "server_busy is v3 only")
        fault("server_busy", 0)
        fault("garbage", 1)
        r = curl(sim, mac_q)
        try:
            ET.fromstring(r["body"])
            check(False, "garbage fault answered XML")
        except ET.ParseError:
            pass
        fault("garbage", 0)
        fault("huge", 5)
        r = curl(sim, mac_q)
        check(r["code"] == 200 and len(r["body"]) > 5 << 20 and
              ET.fromstring(r["body"]).find("deviceList/device") is not None,
              "huge body %d bytes" % len(r["body"]))
        fault("huge", 0)
        counts = json.loads(curl(sim, sim.root + "/_sim/counts", creds=False)["body"])["counts"]
        check(counts["by_route_status"]["devices"] == {"401": 1, "403": 1, "404": 1, "500": 1,
                                                       "200": 5} and
              counts["by_route_status"]["mdminfo"] == {"429": 1}, "counts %r" % counts)
        fault("stall", 1)
        t1 = time.monotonic()
        r = curl(sim, mac_q, max_time=1)
        check(r["rc"] == 28 and time.monotonic() - t1 < 5, "stall: curl rc %d" % r["rc"])

        # Intune style: capitalised names, a default namespace, no <macaddress> when one device
        cap = start(capitalised=True)
        ns = "{urn:mdm-sim:intune-compliance}"
        root = ok_xml(cap, cap.base + "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                      "macaddress&value=F018983A4B5C&filter=all")
        dev = root.find(ns + "DeviceList/" + ns + "Device")
        check(root.tag == ns + "ise_api" and [c.tag for c in dev] == [ns + "Attributes"] and
              dev.findtext(ns + "Attributes/" + ns + "Compliance/" + ns + "Status") == "true",
              "capitalised %r" % ET.tostring(root)[:400])
        root = ok_xml(cap, cap.base + "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria="
                      "compliance&value=false&filter=all")
        check(root.find(ns + "DeviceList/" + ns + "Device/" + ns + "Macaddress") is not None,
              "capitalised listing keeps the identifier")

        # non-compliant only: full and compliance=true listings refused, the poll answered
        nco = start(noncompliant_only=True)
        nq = nco.base + "/ciscoise/mdmapi/v3/devices/?paging=0&%sfilter=all"
        check(curl(nco, nq % "")["code"] == 403, "full listing not refused")
        check(curl(nco, nq % "querycriteria=compliance&value=true&")["code"] == 403,
              "compliance=true listing not refused")
        check(len(devs(ok_xml(nco, nq % "querycriteria=compliance&value=false&"))) == 15,
              "the poll")
        check(len(devs(ok_xml(nco, nq % "querycriteria=macaddress&value=F018983A4B5C&"))) == 1,
              "single query")

        # an account without the REST API MDM role: 403 with the right password, 401 without
        norole = start(role="none")
        check(curl(norole, norole.base + "/ciscoise/mdminfo/")["code"] == 403, "role none")
        check(curl(norole, norole.base + "/ciscoise/mdminfo/", "-u", "x:y",
                   creds=False)["code"] == 401, "role none, bad password")

        # certificates: expired (same CA) and from another CA are refused by curl
        exp = start(cert="expired-server")
        r = curl(exp, exp.base + "/ciscoise/mdminfo/")
        check(r["rc"] == 60 and b"expired" in r["stderr"], "expired certificate: %r" % r)
        r = curl(exp, exp.base + "/ciscoise/mdminfo/", "--insecure")
        check(r["code"] == 200, "expired server otherwise fine")
        oth = start(cert="other-server")
        check(curl(oth, oth.base + "/ciscoise/mdminfo/")["rc"] == 60, "other CA accepted")
        check(curl(oth, oth.base + "/ciscoise/mdminfo/", cacert="other-ca.pem")["code"] == 200,
              "other CA server itself")

        # SIGTERM stops each one with exit code 0, the first one with a stalled answer pending
        for s in reversed(sims):
            check(s.stop() == 0, "simulator exit code")
        check(time.monotonic() - t0 < 40, "took %.1fs" % (time.monotonic() - t0))
    finally:
        for s in reversed(sims):
            try:
                s.stop()
            except AssertionError:
                pass
        shutil.rmtree(tmp, ignore_errors=True)


# --- operator tools and the adapter API ----------------------------------------------------------

def case_cli_query_and_test_connection(env):
    gw = env.gateway()  # not started: the tools read its config and ask the adapters themselves
    try:
        def run(*args):
            p = subprocess.run([env.binary] + list(args), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=60)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        rc, out, err = run("query", "-c", gw.config_path, "00:26:b4:24:fe:b4")
        check(rc == 0, "query: exit %d\n%s%s" % (rc, out, err))
        check(out.startswith("query: mac 0026B424FEB4\n"), out)
        check(re.search(r"^inventory: type=inventory outcome=found fail=none elapsed_ms=\d+ "
                        r"devices=1$", out, re.M), out)
        check(re.search(r"^  device source=inventory vendor_id=inv-0001 registered=yes "
                        r"compliant=no failure_reason=\"", out, re.M), out)
        check("macs=0026B424FEB4,0026B424FEB5" in out and "last_checkin=20" in out, out)
        check(re.search(r"^merged: verdict=found partial=no devices=1 compliance_rule=all "
                        r"partial_answer=answer$", out, re.M), out)

        rc, out, err = run("query", "-c", gw.config_path, "--kind", "hostname", "no-such-host")
        check(rc == 0 and "outcome=not_enrolled" in out and "verdict=not_enrolled" in out,
              "not enrolled: %d\n%s%s" % (rc, out, err))
        rc, out, err = run("query", "-c", gw.config_path, "--kind", "imei", "12")
        check(rc == 2 and "IMEI" in err, "bad identifier: %d %s" % (rc, err))
        rc, out, err = run("query", "-c", gw.config_path)
        check(rc == 2 and "usage:" in err, "no identifier: %d %s" % (rc, err))

        rc, out, err = run("test-connection", "-c", gw.config_path, "inventory")
        check(rc == 0 and re.match(r"inventory: OK: inventory inventory: \d+ devices loaded",
                                   out), "test-connection: %d\n%s%s" % (rc, out, err))
        rc, out, err = run("test-connection", "-c", gw.config_path, "nope")
        check(rc == 2 and "no adapter named nope; configured: inventory" in err,
              "unknown adapter: %d %s" % (rc, err))
    finally:
        gw.cleanup()


def case_adapters_api_needs_admin(env):
    r = env.demo.request("GET", "/api/v1/adapters", user="demo")
    check(r.status == 403, "query role listing adapters: %d" % r.status)
    r = env.demo.request("GET", "/api/v1/adapters", user="boss")
    check(r.status == 200 and r.header("Content-Type") == "application/json",
          "admin listing adapters: %d %s" % (r.status, r.header("Content-Type")))
    body = json.loads(r.body)
    check([a["name"] for a in body["adapters"]] == ["inventory"], r.text)
    a = body["adapters"][0]
    check(a["type"] == "inventory" and a["healthy"] is True and a["breaker"] == "closed"
          and a["last_error"] is None, r.text)
    r = env.demo.request("POST", "/api/v1/adapters", user="boss")
    check(r.status == 405 and r.header("Allow") == "GET", "POST list: %d" % r.status)
    r = env.demo.request("POST", "/api/v1/adapters/inventory/test", user="demo")
    check(r.status == 403, "query role testing an adapter: %d" % r.status)
    r = env.demo.request("POST", "/api/v1/adapters/inventory/test", user="boss")
    doc = json.loads(r.body)
    check(r.status == 200 and doc["adapter"] == "inventory" and doc["ok"] is True and
          "devices loaded" in doc["message"], "admin testing inventory: %d %s" % (r.status, r.text))
    r = env.demo.request("POST", "/api/v1/adapters/nosuch/test", user="boss")
    check(r.status == 404 and b"no adapter named nosuch" in r.body, "unknown: %d %s" % (
        r.status, r.text))
