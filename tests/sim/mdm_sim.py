#!/usr/bin/env python3
"""Cloud MDM simulator (Cisco MCMS, MaaS360, Intune's compliance service...) for mdmgw's tests,
standard library only. It serves the ISE MDM API, the same API the
gateway serves, so the gateway's cloud MDM adapter has something to be a client of.

  mdm_sim.py --port P --cert server.pem --key server-key.pem [--data mdm_data.json]
             [--generate N [--seed S] [--noncompliant-share F]] --user U --password PW
             [--instance NAME] [--query-max-size N] [--role rest|none]
             [--capitalised] [--noncompliant-only] [--fault NAME=VALUE ...]
             [--action-log FILE] [--verbose]

Prints "READY <port>" on stdout once listening (--port 0 picks a free port); SIGTERM or SIGINT
stops it with exit code 0, also while answers are delayed or stalled. See tests/sim/README.md.
"""
import argparse
import base64
import hmac
import json
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape as _escape

FAULTS = ("status", "throttle", "latency", "stall", "garbage", "huge", "server_busy",
          "max_version", "hold_action")
# --report-ownership: <ownership> in <attributes> (not in the ISE MDM API; some MDMs send it)
REPORT_OWNERSHIP = False
STATUS_FAULTS = (401, 403, 404, 429, 500, 503)
ACTIONS = ("corporate_wipe", "full_wipe", "pin_lock")
# criteria per API version (v1: macaddress, compliance, username; v2 adds udid, imei, meid;
# v3 adds guid and the hostname criterion, guidhn or hostname)
CRITERIA = {1: ("macaddress", "compliance", "username")}
CRITERIA[2] = CRITERIA[1] + ("udid", "imei", "meid")
CRITERIA[3] = CRITERIA[2] + ("guid", "guidhn", "hostname")
# criteria that name one device: in --capitalised mode their answers omit the identifier element
SINGLE = ("macaddress", "guid", "udid", "imei", "meid", "guidhn", "hostname")
CAPITAL_NS = "urn:mdm-sim:intune-compliance"

def escape(s):
    """&, <, > and " escaped, as the gateway writes text (tests/data/golden)."""
    return _escape(s, {'"': "&quot;"})


HEX12 = re.compile(r"[0-9A-F]{12}")


def norm_mac(s):
    """12 upper-case hex digits from any of the usual forms, or None."""
    t = re.sub(r"[:.\-]", "", (s or "").strip()).upper()
    return t if HEX12.fullmatch(t) else None


def b(v):
    return "true" if v else "false"


GEN_MAC_PREFIX = 0x001A2C000000  # generated device i has MAC 00:1A:2C:xx:xx:xx = i


def generate(n, seed, share):
    """n deterministic enrolled phones (--generate): MAC GEN_MAC_PREFIX + i, GUID, UDID, IMEI,
    serial, hostname and user from the seed; round(n * share) of them, chosen by the seed,
    non-compliant. Each carries "_gen": i (not rendered) so /_sim/flip can find it."""
    import random
    rnd = random.Random(seed)
    bad = set(rnd.sample(range(n), int(round(n * share)))) if n else set()
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        mac = "%012X" % (GEN_MAC_PREFIX + i)
        ok = i not in bad
        out.append({
            "_gen": i, "macaddress": mac, "macs": [mac],
            "guid": "%08x-%04x-4%03x-8%03x-%012x" % (rnd.getrandbits(32), rnd.getrandbits(16),
                                                      rnd.getrandbits(12), rnd.getrandbits(12), i),
            "udid": "%08X-%016X" % (rnd.getrandbits(32), rnd.getrandbits(64)),
            "imei": "35%013d" % i, "serial": "BNCH%08d" % i, "hostname": "bench-phone-%07d" % i,
            "username": "user%07d" % i, "ownership": "corporate", "registered": True,
            "compliant": ok, "failure_reason": "" if ok else "passcode policy not met",
            "disk_encrypted": True, "pin_lock": ok, "jail_broken": False, "last_checkin": now,
            "manufacturer": "Apple", "model": "iPhone 15", "os_version": "iOS 17.5.1"})
    return out


class Sim:
    def __init__(self, args):
        self.args = args
        data = {}
        if args.data:
            with open(args.data) as f:
                data = json.load(f)
        self.server_info = data.get("server", {})
        self.devices = []
        for d in data.get("devices", []):
            d = dict(d)
            mac = norm_mac(d.get("macaddress"))
            if not mac:
                raise ValueError("device without a valid macaddress: %r" % d)
            d["macaddress"] = mac
            d["macs"] = [mac] + [norm_mac(m) for m in d.get("extra_macaddresses", [])]
            self.devices.append(d)
        self.pristine = json.loads(json.dumps(self.devices))
        # generated devices are made again on reset rather than kept twice
        self.devices += generate(args.generate, args.seed, args.noncompliant_share)
        self.flip_next = 0
        self.frags = {}  # id(device) -> (device, {(version, ident): its rendered <device> lines})
        self.found = {}  # compliance=true|false -> the matching devices
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.faults = {}
        for spec in args.fault or []:
            name, _, value = spec.partition("=")
            self.set_fault(name, value or "1")
        self.actions = []
        self.action_seq = 0
        self.reset_counts()

    def set_fault(self, name, value):
        if name not in FAULTS:
            raise ValueError("unknown fault '%s' (one of %s)" % (name, ", ".join(FAULTS)))
        try:
            v = int(value) if value not in ("", None) else 0
        except ValueError:
            raise ValueError("fault value must be an integer")
        if v < 0:
            raise ValueError("fault value must not be negative")
        if name == "status" and v not in (0,) + STATUS_FAULTS:
            raise ValueError("status fault must be one of %s (0 clears)"
                             % ", ".join(map(str, STATUS_FAULTS)))
        if name == "max_version" and v > 3:
            raise ValueError("max_version must be 1, 2 or 3 (0 clears)")
        with self.lock:
            if v:
                self.faults[name] = v
            else:
                self.faults.pop(name, None)

    def reset_counts(self):
        with self.lock:
            self.counts = {"connections": 0, "requests": 0, "by_status": {}, "by_route": {},
                           "by_route_status": {}, "by_query": {}}

    def count(self, route, status, query=None):
        with self.lock:
            c = self.counts
            c["requests"] += 1
            s = str(status)
            c["by_status"][s] = c["by_status"].get(s, 0) + 1
            c["by_route"][route] = c["by_route"].get(route, 0) + 1
            rs = c["by_route_status"].setdefault(route, {})
            rs[s] = rs.get(s, 0) + 1
            if query:
                c["by_query"][query] = c["by_query"].get(query, 0) + 1

    def count_connection(self):
        with self.lock:
            self.counts["connections"] += 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps({"counts": self.counts, "faults": self.faults}))

    def record_action(self, entry):
        with self.lock:
            self.action_seq += 1
            entry = dict(entry, seq=self.action_seq, time=round(time.time(), 3))
            self.actions.append(entry)
            if self.args.action_log:
                with open(self.args.action_log, "a") as f:
                    f.write(json.dumps(entry, sort_keys=True) + "\n")
                    f.flush()

    # -- listings: each device's XML is rendered once per (version, identifier) and the
    # compliance lists are kept, so a 5000-device page costs a join, not 5000 renderings.
    # Every change to the devices calls changed().

    def changed(self, device=None):
        """Forgets what was rendered: for one device, or for all (None). Under self.lock."""
        self.found.clear()
        if device is None:
            self.frags.clear()
        else:
            self.frags.pop(id(device), None)

    def matching(self, crit, value):
        if crit != "compliance":
            return [d for d in self.devices if self.matches(d, crit, value)]
        with self.lock:
            found = self.found.get(value)
            if found is None:
                found = [d for d in self.devices if self.matches(d, crit, value)]
                self.found[value] = found
            return found

    def fragment(self, d, version, ident, ident_value):
        key = (version, ident)
        with self.lock:
            held = self.frags.get(id(d))
            if held is None or held[0] is not d:  # the device itself is held: ids stay unique
                held = self.frags[id(d)] = (d, {})
            per = held[1]
            text = per.get(key)
            if text is None:
                x = Xml(self.args.capitalised)
                x.lines = []
                render_device(x, d, version, ident, ident_value)
                text = per[key] = "\n".join(x.lines)
            return text

    def flip(self, count=0, macs=(), compliant=None):
        """Changes generated devices' compliance: those named by macs, else the next count
        generated devices (a cursor that goes round) not already in the state compliant (when
        given). Returns [{"mac", "compliant"}] of the devices changed."""
        out = []
        with self.lock:
            gen = {d["_gen"]: d for d in self.devices if "_gen" in d}
            n = self.args.generate
            picks = []
            if macs:
                for m in macs:
                    mac = norm_mac(m)
                    i = int(mac, 16) - GEN_MAC_PREFIX if mac else -1
                    if i not in gen:
                        raise ValueError("not a generated device: %r" % m)
                    picks.append(gen[i])
            else:
                for k in range(n):
                    if len(picks) >= count:
                        break
                    d = gen.get((self.flip_next + k) % n)
                    if d and (compliant is None or bool(d["compliant"]) != compliant):
                        picks.append(d)
                if picks:
                    self.flip_next = (picks[-1]["_gen"] + 1) % n
            for d in picks:
                d["compliant"] = (not d["compliant"]) if compliant is None else compliant
                d["failure_reason"] = "" if d["compliant"] else "passcode policy not met"
                self.changed(d)
                out.append({"mac": d["macaddress"], "compliant": d["compliant"]})
        return out

    # -- lookups

    def matches(self, d, crit, value):
        if crit == "macaddress":
            return norm_mac(value) in d["macs"]
        if crit == "compliance":
            return d.get("registered") and bool(d.get("compliant")) == (value == "true")
        if crit in ("guid", "udid", "imei", "meid", "username"):
            v = d.get(crit) or ""
            return v != "" and v.lower() == value.strip().lower()
        if crit in ("guidhn", "hostname"):
            value = value.strip().lower()
            return value != "" and value in ((d.get("guid") or "").lower(),
                                             (d.get("hostname") or "").lower())
        return False


# --- XML rendering, in the gateway's layout (tests/data/golden/*.res) ---------------------------

class Xml:
    def __init__(self, capitalised):
        self.cap = capitalised
        self.lines = ['<?xml version="1.0" encoding="UTF-8"?>']

    def n(self, name):
        return name[0].upper() + name[1:] if self.cap else name

    def root_open(self):
        self.lines.append('<ise_api xmlns="%s">' % CAPITAL_NS if self.cap else "<ise_api>")

    def el(self, depth, name, value):
        self.lines.append("%s<%s>%s</%s>" % ("  " * depth, self.n(name), escape(str(value)),
                                             self.n(name)))

    def open(self, depth, name):
        self.lines.append("%s<%s>" % ("  " * depth, self.n(name)))

    def close(self, depth, name):
        self.lines.append("%s</%s>" % ("  " * depth, self.n(name)))

    def empty(self, depth, name):
        self.lines.append("%s<%s/>" % ("  " * depth, self.n(name)))

    def body(self):
        return ("\n".join(self.lines + ["</ise_api>"]) + "\n").encode()


def error_xml(status, message):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ise_api>\n  <name>error</name>\n'
            '  <status>%d</status>\n  <message>%s</message>\n</ise_api>\n'
            % (status, escape(message))).encode()


def render_device(x, d, version, ident, ident_value):
    x.open(2, "device")
    if ident:
        x.el(3, ident, ident_value)
    x.open(3, "attributes")
    x.el(4, "register_status", b(d.get("registered")))
    if d.get("registered"):
        x.open(4, "compliance")
        x.el(5, "status", b(d.get("compliant")))
        for k in ("failure_reason", "remediation"):
            if d.get(k):
                x.el(5, k, d[k])
        x.close(4, "compliance")
        for k, src in (("disk_encryption_on", "disk_encrypted"), ("pin_lock_on", "pin_lock"),
                       ("jail_broken", "jail_broken")):
            if d.get(src) is not None:
                x.el(4, k, b(d[src]))
    for k, src in (("manufacturer", "manufacturer"), ("model", "model"), ("imei", "imei"),
                   ("meid", "meid"), ("udid", "udid"), ("serial_number", "serial"),
                   ("os_version", "os_version"), ("phone_number", "phone_number")):
        if d.get(src):
            x.el(4, k, d[src])
    if REPORT_OWNERSHIP and d.get("ownership") in ("corporate", "personal"):
        x.el(4, "ownership", d["ownership"])
    if version >= 3:
        if d.get("last_checkin"):
            x.el(4, "lastCheckinTimeStamp", d["last_checkin"])
        if d.get("guid"):
            x.el(4, "guid", d["guid"])
        x.el(4, "macaddresses", ",".join(d["macs"][:5]))
    x.close(3, "attributes")
    x.close(2, "device")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mdm-sim/1.0"
    sys_version = ""
    timeout = 120

    def log_message(self, fmt, *a):
        if self.server.sim.args.verbose:
            sys.stderr.write("mdm_sim: %s %s\n" % (self.address_string(), fmt % a))

    def send(self, status, body, ctype="application/xml; charset=utf-8", headers=(),
             route=None, query=None):
        if route is not None:
            self.server.sim.count(route, status, query)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, message, route, headers=()):
        self.send(status, error_xml(status, message), headers=headers, route=route)

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def dispatch(self):
        sim = self.server.sim
        raw_path, _, raw_query = self.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        params = {}
        for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
            params.setdefault(k, v)
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(min(length, 4 << 20)) if length else b""
        if path.startswith("/_sim/"):
            return self.control(path)
        # the instance prefix: required when configured, refused when not
        inst = sim.args.instance
        route, rest = "other", None
        if inst:
            if path.startswith("/" + inst + "/"):
                rest = path[len(inst) + 1:]
        elif not re.match(r"/[^/]+/ciscoise/", path):
            rest = path
        version = None
        if rest is not None:
            rest = rest.rstrip("/") or "/"
            if rest == "/ciscoise/mdminfo":
                route = "mdminfo"
            else:
                m = re.fullmatch(r"/ciscoise/mdmapi/v([123])/(devices|batchdevices|action)"
                                 r"(/.*)?", rest)
                if m:
                    version, route, tail = int(m.group(1)), m.group(2), m.group(3) or ""
                    if route == "batchdevices" and tail:
                        route = "other"
                    if route == "action":
                        # .../action/?actionType=X, .../action/actionType=X, .../action?actionType=X
                        am = re.fullmatch(r"/actionType=([A-Za-z_]+)", tail)
                        if am:
                            params.setdefault("actionType", am.group(1))
                        elif tail:
                            route = "other"
                    self.tail = tail
        with sim.lock:
            faults = dict(sim.faults)
        mv = faults.get("max_version")
        if mv and version is not None and version > mv:
            route = "other"  # an API version the MDM no longer serves: 404
        if route != "other":
            if faults.get("latency") and sim.stop.wait(faults["latency"] / 1000.0):
                self.close_connection = True
                return
            st = faults.get("status")
            if st:
                hdrs = ()
                if st == 401:
                    hdrs = (("WWW-Authenticate", 'Basic realm="mdm-sim"'),)
                elif st in (429, 503):
                    hdrs = (("Retry-After", "1"),)
                return self.error(st, "simulated fault: HTTP %d" % st, route, hdrs)
            if faults.get("throttle"):
                return self.error(429, "Too many requests", route,
                                  (("Retry-After", str(faults["throttle"])),))
        if not self.authenticate(route):
            return
        if route == "other":
            return self.error(404, "no such resource", route)
        if sim.args.role == "none":
            return self.error(403, "the account lacks the REST API MDM role", route)
        if route == "mdminfo":
            if self.command not in ("GET", "HEAD"):
                return self.error(405, "method not allowed", route, (("Allow", "GET"),))
            return self.mdminfo(params, faults)
        if route == "devices":
            if self.command not in ("GET", "HEAD"):
                return self.error(405, "method not allowed", route, (("Allow", "GET"),))
            return self.devices(version, params, faults)
        if self.command != "POST":
            return self.error(405, "method not allowed", route, (("Allow", "POST"),))
        if route == "batchdevices":
            return self.batch(version, params, faults)
        return self.action(version, params, faults)

    def authenticate(self, route):
        sim = self.server.sim
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "basic":
            try:
                u, sep, p = base64.b64decode(token.strip(), validate=True).decode(
                    "utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                u, sep, p = "", "", ""
            if sep and hmac.compare_digest(u.encode(), sim.args.user.encode()) and \
                    hmac.compare_digest(p.encode(), sim.args.password.encode()):
                return True
        self.error(401, "authentication required", route,
                   (("WWW-Authenticate", 'Basic realm="mdm-sim"'),))
        return False

    # -- answers

    def finish_answer(self, route, body, faults, query=None):
        if faults.get("garbage"):
            return self.send(200, b'<?xml version="1.0" encoding="UTF-8"?>\n<ise_api><name>'
                             b'attributes</name><deviceList><device><macaddress>\x00\xff'
                             b'<html>Runtime Error</html>', route=route, query=query)
        if faults.get("huge"):
            return self.send_huge(route, body, faults["huge"], query)
        if faults.get("stall"):
            return self.send_stalled(route, body, query)
        self.send(200, body, route=route, query=query)

    def mdminfo(self, params, faults):
        sim = self.server.sim
        raw = params.get("ise_api_version", "1")
        if not re.fullmatch(r"[0-9]{1,6}", raw.strip()) or int(raw) < 1:
            return self.error(400, "ise_api_version must be a positive integer", "mdminfo")
        v = min(int(raw), 3, faults.get("max_version") or 3)
        prefix = "/" + sim.args.instance if sim.args.instance else ""
        info = sim.server_info
        x = Xml(sim.args.capitalised)
        x.root_open()
        x.el(1, "name", "mdminfo")
        x.el(1, "api_version", v)
        x.el(1, "api_path", "%s/ciscoise/mdmapi/v%d" % (prefix, v))
        x.el(1, "redirect_url", info.get("redirect_url", "https://enroll.mdm-sim.test/"))
        x.el(1, "query_max_size", sim.args.query_max_size)
        x.el(1, "messaging_support", b(info.get("messaging_support")))
        x.el(1, "vendor", info.get("vendor", "Simulated"))
        x.el(1, "product_name", info.get("product_name", "MDM simulator"))
        x.el(1, "product_version", info.get("product_version", "1.0"))
        self.finish_answer("mdminfo", x.body(), faults)

    def devices(self, version, params, faults):
        sim = self.server.sim
        tail = [p for p in self.tail.split("/") if p]
        if tail:  # v1 path forms: {paging}/{filter} or {paging}/{querycriteria}/{value}/{filter}
            if len(tail) == 2:
                params = {"paging": tail[0], "filter": tail[1]}
            elif len(tail) == 4:
                params = {"paging": tail[0], "querycriteria": tail[1], "value": tail[2],
                          "filter": tail[3]}
            else:
                return self.error(404, "no such resource", "devices")
        crit = params.get("querycriteria", "").strip().lower()
        value = params.get("value", "")
        if crit:
            if crit not in CRITERIA[version]:
                return self.error(400, "querycriteria '%s' is not known in version %d"
                                  % (crit, version), "devices")
            if crit == "macaddress" and not norm_mac(value):
                return self.error(400, "value is not a MAC address", "devices")
            if crit == "compliance":
                value = value.strip().lower()
                if value not in ("true", "false"):
                    return self.error(400, "compliance value must be true or false", "devices")
            if crit != "compliance" and not value.strip():
                return self.error(400, "value is required", "devices")
        query = "compliance=" + value if crit == "compliance" else (crit or "all")
        if sim.args.noncompliant_only and query in ("all", "compliance=true"):
            return self.send(403, error_xml(403, "this MDM only lists non-compliant devices"),
                             route="devices", query=query)
        if crit:
            found = sim.matching(crit, value)
        else:
            found = sim.devices
        ident = "macaddress"
        if version >= 3 and params.get("deviceidentifier", "").lower() == "guid":
            ident = "guid"
        if sim.args.capitalised and crit in SINGLE:
            ident = None
        self.answer_list(version, found, params.get("paging", "0"), ident,
                         norm_mac(value) if crit == "macaddress" else None, faults, "devices",
                         query)

    def answer_list(self, version, found, paging, ident, asked_mac, faults, route, query):
        sim = self.server.sim
        paging = (paging or "0").strip()
        if not re.fullmatch(r"[0-9]{1,9}", paging):
            return self.error(400, "paging must be 0 or a paging_info cursor", route)
        start = int(paging)
        size = sim.args.query_max_size
        page = found[start:start + size]
        nxt = start + size if start + size < len(found) else 0
        x = Xml(sim.args.capitalised)
        x.root_open()
        x.el(1, "name", "attributes")
        x.el(1, "api_version", version)
        x.el(1, "paging_info", nxt)
        if version >= 3:
            x.el(1, "server_busy_wait_seconds", faults.get("server_busy", 0))
        if not page:
            x.empty(1, "deviceList")
        else:
            x.open(1, "deviceList")
            for d in page:
                i, iv = ident, None
                if i == "guid" and not d.get("guid"):
                    i = "macaddress"  # a device without a GUID is listed by its MAC
                if i == "guid":
                    iv = d["guid"]
                elif i == "macaddress":
                    iv = asked_mac if asked_mac in d["macs"] else d["macaddress"]
                if asked_mac is None:  # the answer depends on the device alone: reuse it
                    x.lines.append(sim.fragment(d, version, i, iv))
                else:
                    render_device(x, d, version, i, iv)
            x.close(1, "deviceList")
        self.finish_answer(route, x.body(), faults, query)

    def body_xml(self):
        """The request's XML: the raw body, or the first part of a multipart/form-data body."""
        body = self.body
        ctype = self.headers.get("Content-Type", "")
        m = re.search(r'boundary="?([^";]+)"?', ctype)
        if ctype.lower().startswith("multipart/") and m:
            sep = b"--" + m.group(1).encode()
            parts = body.split(sep)
            if len(parts) > 1:
                part = parts[1]
                _, _, part = part.partition(b"\r\n\r\n")
                body = part.rstrip(b"\r\n")
        return ET.fromstring(body)

    def batch(self, version, params, faults):
        sim = self.server.sim
        crit = params.get("querycriteria", "macaddress").strip().lower() or "macaddress"
        if crit not in CRITERIA[version] or crit == "compliance":
            return self.error(400, "querycriteria '%s' is not usable in batchdevices" % crit,
                              "batchdevices")
        try:
            root = self.body_xml()
        except ET.ParseError:
            return self.error(400, "the body is not XML", "batchdevices")
        values = []
        for el in root.iter():
            local = el.tag.rsplit("}", 1)[-1].lower()
            if local in ("value", "macaddress", "guid", "udid", "imei", "meid", "username") \
                    and el.text:
                values += [v.strip() for v in el.text.split(",") if v.strip()]
        if len(values) > sim.args.query_max_size:
            return self.error(400, "more than query_max_size values", "batchdevices")
        found, seen = [], set()
        for v in values:
            for d in sim.devices:
                if id(d) not in seen and sim.matches(d, crit, v):
                    seen.add(id(d))
                    found.append(d)
        ident = "guid" if version >= 3 and params.get("deviceidentifier", "").lower() == "guid" \
            else "macaddress"
        self.answer_list(version, found, params.get("paging", "0"), ident, None, faults,
                         "batchdevices", "batch:" + crit)

    def action(self, version, params, faults):
        sim = self.server.sim
        atype = params.get("actionType", "")
        if atype not in ACTIONS:
            return self.error(400, "actionType must be one of %s" % ", ".join(ACTIONS), "action")
        try:
            root = self.body_xml()
        except ET.ParseError:
            return self.error(400, "the body is not XML", "action")
        kind = key = None
        for el in root.iter():
            local = el.tag.rsplit("}", 1)[-1].lower()
            if local in ("macaddress", "guid") and (el.text or "").strip():
                kind, key = local, el.text.strip()
                break
        if not kind:
            return self.error(400, "the body names no device (identifier/macaddress or guid)",
                              "action")
        if kind == "macaddress":
            mac = norm_mac(key)
            if not mac:
                return self.error(400, "identifier is not a MAC address", "action")
            key = mac
        dev = next((d for d in sim.devices if sim.matches(d, kind, key)), None)
        if dev is None:
            ok, reason = False, "unknown device"
        elif not dev.get("registered"):
            ok, reason = False, "device is not enrolled"
        elif atype == "full_wipe" and dev.get("ownership") == "personal":
            ok, reason = False, "full wipe is not allowed on a personal device"
        else:
            ok, reason = True, ""
        if ok:
            sim.record_action({"action": atype, "identifier": kind, "value": key,
                               "macaddress": dev["macaddress"], "guid": dev.get("guid"),
                               "api_version": version})
        x = Xml(sim.args.capitalised)
        x.root_open()
        x.el(1, "name", "action")
        x.el(1, "api_version", version)
        x.open(1, "deviceList")
        x.open(2, "device")
        x.el(3, kind, key)
        x.open(3, "result")
        x.el(4, "action_status", b(ok))
        x.el(4, "failure_reason", reason)
        x.close(3, "result")
        x.close(2, "device")
        x.close(1, "deviceList")
        if faults.get("hold_action"):
            # the MDM took the command (recorded above) but its answer never comes: the
            # gateway's crash window between sending and journalling the outcome
            return self.send_stalled("action", x.body(), atype)
        self.finish_answer("action", x.body(), faults, atype)

    def send_huge(self, route, body, mb, query):
        """A well-formed answer of about mb megabytes: a long unknown element before </ise_api>."""
        self.server.sim.count(route, 200, query)
        end = body.rindex(b"</ise_api>")
        head = body[:end] + b"  <sim_padding>"
        tail = b"</sim_padding>\n" + body[end:]
        pad = mb * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(head) + pad + len(tail)))
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.write(head)
        chunk = b"x" * 65536
        left = pad
        while left > 0 and not self.server.sim.stop.is_set():
            n = min(left, len(chunk))
            self.wfile.write(chunk[:n])
            left -= n
        self.wfile.write(tail)

    def send_stalled(self, route, body, query):
        """Headers and half the body, then silence until the client goes or the server stops."""
        self.server.sim.count(route, 200, query)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.settimeout(0.5)
        while not self.server.sim.stop.is_set():
            try:
                if not self.connection.recv(4096):
                    return
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return

    def control(self, path):
        sim = self.server.sim
        q = dict(urllib.parse.parse_qsl(self.path.partition("?")[2], keep_blank_values=True))
        path = path.rstrip("/")
        js = "application/json"
        if path == "/_sim/counts" and self.command == "GET":
            return self.send(200, json.dumps(sim.snapshot()).encode(), js)
        if path == "/_sim/actions" and self.command == "GET":
            with sim.lock:
                doc = {"actions": list(sim.actions)}
            return self.send(200, json.dumps(doc).encode(), js)
        if path == "/_sim/reset" and self.command == "POST":
            with sim.lock:
                sim.faults.clear()
                sim.actions = []
                sim.devices = json.loads(json.dumps(sim.pristine)) + generate(
                    sim.args.generate, sim.args.seed, sim.args.noncompliant_share)
                sim.flip_next = 0
                sim.changed()
            sim.reset_counts()
            return self.send(200, b'{"reset": true}', js)
        if path == "/_sim/flip" and self.command == "POST":
            return self.flip(sim, js)
        if path == "/_sim/fault" and self.command == "POST":
            try:
                sim.set_fault(q.get("name", ""), q.get("value", "0"))
            except ValueError as e:
                return self.send(400, json.dumps({"error": str(e)}).encode(), js)
            return self.send(200, json.dumps(sim.snapshot()["faults"]).encode(), js)
        if path == "/_sim/device" and self.command == "POST":
            return self.change_device(sim, q, js)
        return self.send(404, b'{"error": "no such control route"}', js)

    def flip(self, sim, js):
        """POST /_sim/flip {"count": n} or {"macs": [...]}, optionally "compliant": bool."""
        try:
            doc = json.loads(self.body or b"{}")
            if not isinstance(doc, dict):
                raise ValueError("body must be a JSON object")
            count, macs, want = doc.get("count", 0), doc.get("macs") or [], doc.get("compliant")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError("count must be a non-negative integer")
            if not isinstance(macs, list) or not all(isinstance(m, str) for m in macs):
                raise ValueError("macs must be a list of MAC strings")
            if want is not None and not isinstance(want, bool):
                raise ValueError("compliant must be true or false")
            changed = sim.flip(count, macs, want)
        except ValueError as e:
            return self.send(400, json.dumps({"error": str(e)}).encode(), js)
        return self.send(200, json.dumps({"flipped": changed}).encode(), js)

    def change_device(self, sim, q, js):
        """POST /_sim/device?mac=M&compliant=true|false, or &remove=1 (unenrolled: gone)."""
        mac = norm_mac(q.get("mac", ""))
        with sim.lock:
            found = [d for d in sim.devices if d["macaddress"] == mac]
            if not found:
                return self.send(404, b'{"error": "no such device"}', js)
            if q.get("remove") == "1":
                sim.devices = [d for d in sim.devices if d["macaddress"] != mac]
                sim.changed()
            elif q.get("compliant") in ("true", "false"):
                found[0]["compliant"] = q["compliant"] == "true"
                sim.changed(found[0])
            else:
                return self.send(400, b'{"error": "compliant=true|false or remove=1"}', js)
        return self.send(200, b'{"changed": true}', js)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, sim, ctx):
        self.sim = sim
        self.ctx = ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread: a stalled handshake does not block accept
        self.sim.count_connection()
        try:
            request.settimeout(30)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            Handler(tls, client_address, self)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        if self.sim.args.verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="Cloud MDM (ISE MDM API) simulator")
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--cert", required=True, help="PEM chain to serve")
    ap.add_argument("--key", required=True)
    ap.add_argument("--data", help="JSON data set (tests/sim/mdm_data.json)")
    ap.add_argument("--generate", type=int, metavar="N",
                    help="add N generated devices (MACs 00:1A:2C:xx:xx:xx), for benchmarks")
    ap.add_argument("--seed", type=int, default=1, help="--generate's random seed")
    ap.add_argument("--noncompliant-share", type=float, default=0.1,
                    help="share of generated devices that are not compliant")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--instance", help="path prefix every route needs (/<instance>/ciscoise/...)")
    ap.add_argument("--query-max-size", type=int, default=5000)
    ap.add_argument("--role", choices=("rest", "none"), default="rest",
                    help="none: valid credentials get 403 (no REST API MDM role)")
    ap.add_argument("--capitalised", action="store_true",
                    help="Intune style: capitalised element names, a default namespace")
    ap.add_argument("--noncompliant-only", action="store_true",
                    help="full and compliance=true listings are refused with 403")
    ap.add_argument("--fault", action="append", help="NAME=VALUE, e.g. status=500, latency=200")
    ap.add_argument("--action-log", help="append each accepted action as a JSON line")
    ap.add_argument("--report-ownership", action="store_true",
                    help="send <ownership> (corporate/personal) in <attributes>")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    global REPORT_OWNERSHIP
    REPORT_OWNERSHIP = args.report_ownership
    if args.query_max_size < 1:
        ap.error("--query-max-size must be at least 1")
    if not args.data and args.generate is None:
        ap.error("--data or --generate is required (--generate 0: a simulator listing nothing)")
    args.generate = args.generate or 0
    if not 0 <= args.generate <= 0xFFFFFF:
        ap.error("--generate must be 0 to 16777215")
    if not 0.0 <= args.noncompliant_share <= 1.0:
        ap.error("--noncompliant-share must be between 0 and 1")
    if args.instance is not None and not re.fullmatch(r"[A-Za-z0-9._\-]+", args.instance):
        ap.error("--instance must be one path segment")
    try:
        sim = Sim(args)
    except ValueError as e:
        ap.error(str(e))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    server = Server((args.address, args.port), sim, ctx)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    print("READY %d" % server.server_address[1], flush=True)
    while not done.wait(0.5):
        pass
    sim.stop.set()  # wakes latency waits, stalled and huge answers
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
