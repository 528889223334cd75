#!/usr/bin/env python3
"""SCCM / ConfigMgr AdminService simulator for mdmgw's tests (standard library only).

  sccm_sim.py --port P --cert server.pem --key server-key.pem [--data sccm_data.json]
              [--generate N [--seed S] [--noncompliant-share F]]
              [--user 'DOMAIN\\user' --password PW] [--auth basic|ntlm|both]
              [--page-size N] [--fault NAME=VALUE ...] [--verbose]

Serves /AdminService/wmi/<Class> and the $metadata documents over HTTPS from a JSON data set,
with Basic and NTLMv2 authentication, an OData $filter subset, paging by @odata.nextLink, fault
switches and request counters. Prints "READY <port>" on stdout once listening (--port 0 picks a
free port); SIGTERM or SIGINT stops it with exit code 0. See tests/sim/README.md.
"""
import argparse
import base64
import hmac
import json
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLASSES = ("SMS_R_System", "SMS_G_System_NETWORK_ADAPTER", "SMS_G_System_CI_ComplianceState",
           "SMS_G_System_CH_ClientSummary")

# Properties each class is known to have even when no row of the data set carries them, with
# their OData types ("str", "int", "strs" = collection of strings). Properties found in the data
# set are added to these (type from the first non-null value).
SCHEMA = {
    "SMS_R_System": {"ResourceId": "int", "Name": "str", "MACAddresses": "strs", "Client": "int",
                     "Active": "int", "Obsolete": "int", "Decommissioned": "int",
                     "SMSUniqueIdentifier": "str", "ResourceType": "int",
                     "IPAddresses": "strs"},
    "SMS_G_System_NETWORK_ADAPTER": {"ResourceID": "int", "GroupID": "int", "MACAddress": "str",
                                     "Description": "str", "AdapterType": "str"},
    "SMS_G_System_CI_ComplianceState": {"ResourceID": "int", "CI_UniqueID": "str",
                                        "ComplianceState": "int",
                                        "LocalizedDisplayName": "str", "CI_ID": "int"},
    "SMS_G_System_CH_ClientSummary": {"ResourceID": "int", "LastPolicyRequest": "str",
                                      "ClientActiveStatus": "int"},
}

FAULTS = ("latency", "status", "garbage", "huge", "stall")


# --- MD4 (RFC 1320), since OpenSSL 3 hides it from hashlib ----------------------------------

def md4(data):
    def rol(x, n):
        x &= 0xFFFFFFFF
        return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF

    msg = bytearray(data)
    bitlen = (8 * len(data)) & 0xFFFFFFFFFFFFFFFF
    msg.append(0x80)
    while len(msg) % 64 != 56:
        msg.append(0)
    msg += struct.pack("<Q", bitlen)
    h = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476]
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        a, b, c, d = h
        for i in (0, 4, 8, 12):  # round 1: F(x,y,z) = xy | ~x z
            a = rol(a + ((b & c) | (~b & d)) + x[i], 3)
            d = rol(d + ((a & b) | (~a & c)) + x[i + 1], 7)
            c = rol(c + ((d & a) | (~d & b)) + x[i + 2], 11)
            b = rol(b + ((c & d) | (~c & a)) + x[i + 3], 19)
        for i in (0, 1, 2, 3):  # round 2: G(x,y,z) = xy | xz | yz, + 0x5A827999
            a = rol(a + ((b & c) | (b & d) | (c & d)) + x[i] + 0x5A827999, 3)
            d = rol(d + ((a & b) | (a & c) | (b & c)) + x[i + 4] + 0x5A827999, 5)
            c = rol(c + ((d & a) | (d & b) | (a & b)) + x[i + 8] + 0x5A827999, 9)
            b = rol(b + ((c & d) | (c & a) | (d & a)) + x[i + 12] + 0x5A827999, 13)
        for i in (0, 2, 1, 3):  # round 3: H(x,y,z) = x ^ y ^ z, + 0x6ED9EBA1
            a = rol(a + (b ^ c ^ d) + x[i] + 0x6ED9EBA1, 3)
            d = rol(d + (a ^ b ^ c) + x[i + 8] + 0x6ED9EBA1, 9)
            c = rol(c + (d ^ a ^ b) + x[i + 4] + 0x6ED9EBA1, 11)
            b = rol(b + (c ^ d ^ a) + x[i + 12] + 0x6ED9EBA1, 15)
        h = [(v + n) & 0xFFFFFFFF for v, n in zip(h, (a, b, c, d))]
    return struct.pack("<4I", *h)


# --- NTLM (MS-NLMP), server side, NTLMv2 only ----------------------------------------------

NTLMSSP = b"NTLMSSP\x00"
NEG_UNICODE = 0x00000001
NEG_OEM = 0x00000002
REQUEST_TARGET = 0x00000004
NEG_NTLM = 0x00000200
NEG_ALWAYS_SIGN = 0x00008000
TARGET_TYPE_DOMAIN = 0x00010000
NEG_EXTENDED_SESSIONSECURITY = 0x00080000
NEG_TARGET_INFO = 0x00800000
NEG_VERSION = 0x02000000
NEG_128 = 0x20000000
NEG_56 = 0x80000000


def ntlm_challenge(type1, domain, computer):
    """Builds a Type 2 message answering the Type 1 message type1; returns (bytes, challenge)."""
    if len(type1) < 16 or type1[:8] != NTLMSSP or struct.unpack("<I", type1[8:12])[0] != 1:
        raise ValueError("not an NTLM negotiate message")
    cflags = struct.unpack("<I", type1[12:16])[0]
    flags = (REQUEST_TARGET | NEG_NTLM | NEG_ALWAYS_SIGN | TARGET_TYPE_DOMAIN | NEG_TARGET_INFO
             | NEG_VERSION)
    flags |= NEG_UNICODE if cflags & NEG_UNICODE or not cflags & NEG_OEM else NEG_OEM
    flags |= cflags & (NEG_EXTENDED_SESSIONSECURITY | NEG_128 | NEG_56)
    unicode = bool(flags & NEG_UNICODE)
    enc = (lambda s: s.encode("utf-16-le")) if unicode else (lambda s: s.encode("ascii"))
    challenge = os.urandom(8)

    def av(kind, value):
        return struct.pack("<HH", kind, len(value)) + value

    filetime = (int(time.time()) + 11644473600) * 10000000
    dns_domain = domain.lower() + ".sim.test"
    info = (av(2, domain.encode("utf-16-le")) + av(1, computer.encode("utf-16-le"))
            + av(4, dns_domain.encode("utf-16-le"))
            + av(3, (computer.lower() + "." + dns_domain).encode("utf-16-le"))
            + av(7, struct.pack("<Q", filetime)) + av(0, b""))
    target = enc(domain)
    header_len = 56
    msg = (NTLMSSP + struct.pack("<I", 2)
           + struct.pack("<HHI", len(target), len(target), header_len)
           + struct.pack("<I", flags) + challenge + b"\x00" * 8
           + struct.pack("<HHI", len(info), len(info), header_len + len(target))
           + bytes([10, 0]) + struct.pack("<H", 20348) + b"\x00\x00\x00\x0f"  # version
           + target + info)
    return msg, challenge


def ntlm_verify(type3, challenge, user, domain, password):
    """True when type3 is an NTLMv2 Authenticate message for user/domain (compared ignoring
    case) with password, answering challenge."""
    if len(type3) < 64 or type3[:8] != NTLMSSP or struct.unpack("<I", type3[8:12])[0] != 3:
        return False

    def field(off):
        ln, _, at = struct.unpack("<HHI", type3[off:off + 8])
        if at + ln > len(type3):
            raise ValueError("field out of range")
        return type3[at:at + ln]

    try:
        nt = field(20)
        dom_raw = field(28)
        user_raw = field(36)
        flags = struct.unpack("<I", type3[60:64])[0]
        dec = "utf-16-le" if flags & NEG_UNICODE else "latin-1"
        c_domain = dom_raw.decode(dec)
        c_user = user_raw.decode(dec)
    except (ValueError, UnicodeDecodeError, struct.error):
        return False
    if len(nt) <= 24:  # NTLMv1 or NTLM2 session response: refused, as a hardened IIS does
        return False
    if c_user.lower() != user.lower() or c_domain.lower() != domain.lower():
        return False
    nt_hash = md4(password.encode("utf-16-le"))
    v2_hash = hmac.new(nt_hash, (c_user.upper() + c_domain).encode("utf-16-le"), "md5").digest()
    proof = hmac.new(v2_hash, challenge + nt[16:], "md5").digest()
    return hmac.compare_digest(proof, nt[:16])


# --- OData $filter: a small grammar ---------------------------------------------------------
#
#   expr    := and ("or" and)*
#   and     := primary ("and" primary)*
#   primary := "(" expr ")" | Prop "eq" literal | Prop "/any(" var ":" var "eq" literal ")"
#   literal := 'string' ('' inside is one quote) | -?digits
# Keywords are lower case as OData writes them; property names match ignoring case (as WMI).

class FilterError(Exception):
    pass


TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<int>-?\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
                   r"|(?P<punct>[()/:]))")


def tokenize(s):
    out, pos = [], 0
    while True:
        while pos < len(s) and s[pos].isspace():
            pos += 1
        if pos == len(s):
            return out
        m = TOKEN.match(s, pos)
        if not m or m.end() == pos:
            raise FilterError("syntax error at position %d in '%s'" % (pos, s))
        kind = m.lastgroup
        text = m.group(kind)
        if kind == "str":
            out.append(("str", text[1:-1].replace("''", "'")))
        elif kind == "int":
            out.append(("int", int(text)))
        else:
            out.append((kind, text))
        pos = m.end()


class FilterParser:
    def __init__(self, text, props):
        self.toks = tokenize(text)
        self.i = 0
        self.props = props  # lower-case name -> (Name, type)

    def peek(self, kind=None, text=None):
        if self.i >= len(self.toks):
            return False
        k, t = self.toks[self.i]
        return (kind is None or k == kind) and (text is None or t == text)

    def take(self, kind, text=None, what=None):
        if not self.peek(kind, text):
            got = "end of input" if self.i >= len(self.toks) else repr(self.toks[self.i][1])
            raise FilterError("expected %s, found %s" % (what or text or kind, got))
        self.i += 1
        return self.toks[self.i - 1][1]

    def parse(self):
        if not self.toks:
            raise FilterError("empty $filter")
        node = self.expr()
        if self.i != len(self.toks):
            raise FilterError("unexpected %r" % (self.toks[self.i][1],))
        return node

    def expr(self):
        node = self.conj()
        while self.peek("name", "or"):
            self.i += 1
            node = ("or", node, self.conj())
        return node

    def conj(self):
        node = self.primary()
        while self.peek("name", "and"):
            self.i += 1
            node = ("and", node, self.primary())
        return node

    def literal(self):
        if self.peek("str") or self.peek("int"):
            self.i += 1
            return self.toks[self.i - 1]
        raise FilterError("expected a string or integer literal")

    def prop(self):
        name = self.take("name", what="a property name")
        if name in ("and", "or", "eq"):
            raise FilterError("expected a property name, found '%s'" % name)
        p = self.props.get(name.lower())
        if p is None:
            raise FilterError("Could not find a property named '%s'" % name)
        return p

    def primary(self):
        if self.peek("punct", "("):
            self.i += 1
            node = self.expr()
            self.take("punct", ")")
            return node
        name, ptype = self.prop()
        if self.peek("punct", "/"):
            self.i += 1
            self.take("name", "any", what="any")
            self.take("punct", "(")
            var = self.take("name", what="a lambda variable")
            self.take("punct", ":")
            if self.take("name", what="the lambda variable") != var:
                raise FilterError("unknown variable in any()")
            self.take("name", "eq")
            lit = self.literal()
            self.take("punct", ")")
            if ptype != "strs" or lit[0] != "str":
                raise FilterError("any() needs a string collection and a string literal")
            return ("any", name, lit[1])
        self.take("name", "eq")
        lit = self.literal()
        if ptype == "strs":
            raise FilterError("'eq' on the collection '%s': use any()" % name)
        if (ptype == "int") != (lit[0] == "int"):
            raise FilterError("A binary operator with incompatible types was detected: '%s' "
                              "(%s) eq %s literal" % (name, ptype, lit[0]))
        return ("eq", name, lit[1])


def row_get(row, name):
    if name in row:
        return row[name]
    low = name.lower()
    for k, v in row.items():
        if k.lower() == low:
            return v
    return None


def matches(node, row):
    op = node[0]
    if op == "or":
        return matches(node[1], row) or matches(node[2], row)
    if op == "and":
        return matches(node[1], row) and matches(node[2], row)
    value = row_get(row, node[1])
    if op == "any":
        return isinstance(value, list) and any(
            isinstance(v, str) and v.lower() == node[2].lower() for v in value)
    if value is None:
        return False
    if isinstance(node[2], str):  # WQL string comparison ignores case
        return isinstance(value, str) and value.lower() == node[2].lower()
    return isinstance(value, int) and not isinstance(value, bool) and value == node[2]


def filter_rows(sim, cls, tree):
    """The rows of cls the filter tree matches, in data-set order. A single comparison (what
    the adapter sends per MAC or resource) is answered from an index built on first use, so a
    data set of thousands of devices is not scanned per request; anything else is scanned."""
    rows = sim.rows[cls]
    if tree[0] not in ("eq", "any"):
        return [r for r in rows if matches(tree, r)]
    op, name, want = tree
    key = (cls, op, name.lower())
    index = sim.index.get(key)
    if index is None:
        index = {}
        for i, r in enumerate(rows):
            v = row_get(r, name)
            if op == "any":
                vals = [x for x in v if isinstance(x, str)] if isinstance(v, list) else []
            elif isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
                vals = [v]
            else:
                vals = []
            for x in vals:
                k = ("s", x.lower()) if isinstance(x, str) else ("i", x)
                if not index.get(k) or index[k][-1] != i:
                    index.setdefault(k, []).append(i)
        sim.index[key] = index
    k = ("s", want.lower()) if isinstance(want, str) else ("i", want)
    return [rows[i] for i in index.get(k, [])]


# --- the server -------------------------------------------------------------------------------

# --- generated devices (--generate): deterministic, for benchmarks at scale -----------------

GEN_MAC_PREFIX = 0x005057000000  # device i has MAC 00:50:57:xx:xx:xx = i (distinct from the data)
GEN_RESOURCE_BASE = 17000000


def gen_mac(i):
    v = GEN_MAC_PREFIX + i
    return ":".join("%02X" % ((v >> s) & 0xFF) for s in range(40, -8, -8))


def generate(n, seed, share):
    """n devices as the four classes' rows: device i has gen_mac(i), ResourceId
    GEN_RESOURCE_BASE + i, a GUID from the seed, one baseline in state 2 (non-compliant) for
    round(n * share) of them chosen by the seed, else 1, and a client summary. No NIC rows: the
    MAC is in SMS_R_System.MACAddresses, as for most managed PCs."""
    import random
    rnd = random.Random(seed)
    bad = set(rnd.sample(range(n), int(round(n * share)))) if n else set()
    rows = {c: [] for c in CLASSES}
    for i in range(n):
        rid = GEN_RESOURCE_BASE + i
        guid = "%08X-%04X-4%03X-8%03X-%012X" % (rnd.getrandbits(32), rnd.getrandbits(16),
                                                 rnd.getrandbits(12), rnd.getrandbits(12), i)
        rows["SMS_R_System"].append({
            "@odata.etag": 'W/"%d"' % rid, "ResourceId": rid, "Name": "BENCH-PC-%07d" % i,
            "MACAddresses": [gen_mac(i)], "Client": 1, "Active": 1, "Obsolete": 0,
            "Decommissioned": 0, "SMSUniqueIdentifier": "GUID:" + guid, "ResourceType": 5,
            "IPAddresses": ["10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)],
            "__LAZYPROPERTIES": []})
        rows["SMS_G_System_CI_ComplianceState"].append({
            "@odata.etag": 'W/"c%d"' % rid, "ResourceID": rid,
            "CI_UniqueID": "ScopeId_BENCH/Baseline_bench/1", "ComplianceState":
            2 if i in bad else 1, "LocalizedDisplayName": "Compliance", "CI_ID": 16900001})
        rows["SMS_G_System_CH_ClientSummary"].append({
            "@odata.etag": 'W/"s%d"' % rid, "ResourceID": rid,
            "LastPolicyRequest": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "ClientActiveStatus": 1})
    return rows


class Sim:
    def __init__(self, args):
        self.args = args
        data = {}
        if args.data:
            with open(args.data) as f:
                data = json.load(f)
        self.rows = {c: list(data.get(c, [])) for c in CLASSES}
        self.generated = 0
        if args.generate:
            gen = generate(args.generate, args.seed, args.noncompliant_share)
            for c in CLASSES:
                self.rows[c] += gen[c]
            self.generated = args.generate
        self.flip_next = 0
        # each row's JSON, per $select, for the unfiltered listings (see listing_body)
        self.row_json = {}
        self.props = {}
        for c in CLASSES:
            props = {k.lower(): (k, t) for k, t in SCHEMA[c].items()}
            for row in self.rows[c]:
                for k, v in row.items():
                    if k.startswith("@") or k.startswith("__") or k.lower() in props:
                        continue
                    t = ("strs" if isinstance(v, list) else "int" if isinstance(v, int)
                         else "str")
                    props[k.lower()] = (k, t)
            self.props[c] = props
        self.index = {}  # (class, op, property) -> value -> row numbers; see filter_rows
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.faults = {}
        for spec in args.fault or []:
            name, _, value = spec.partition("=")
            self.set_fault(name, value or "1")
        self.reset_counts()
        if args.user:
            dom, sep, usr = args.user.partition("\\")
            self.domain, self.user = (dom, usr) if sep else ("", dom)
        else:
            self.domain = self.user = None

    def set_fault(self, name, value):
        if name not in FAULTS:
            raise ValueError("unknown fault '%s' (one of %s)" % (name, ", ".join(FAULTS)))
        try:
            v = int(value) if value not in ("", None) else 0
        except ValueError:
            raise ValueError("fault value must be an integer")
        if name == "status" and v not in (0, 401, 403, 404, 500):
            raise ValueError("status fault must be 401, 403, 404 or 500 (0 clears)")
        if v < 0:
            raise ValueError("fault value must not be negative")
        with self.lock:
            if v:
                self.faults[name] = v
            else:
                self.faults.pop(name, None)

    def reset_counts(self):
        with self.lock:
            self.counts = {"connections": 0, "requests": 0, "by_status": {}, "by_route": {},
                           "by_route_status": {}}

    def count(self, route, status):
        with self.lock:
            c = self.counts
            c["requests"] += 1
            s = str(status)
            c["by_status"][s] = c["by_status"].get(s, 0) + 1
            c["by_route"][route] = c["by_route"].get(route, 0) + 1
            rs = c["by_route_status"].setdefault(route, {})
            rs[s] = rs.get(s, 0) + 1

    def count_connection(self):
        with self.lock:
            self.counts["connections"] += 1

    def snapshot(self):
        with self.lock:
            return json.loads(json.dumps({"counts": self.counts, "faults": self.faults}))

    # -- unfiltered listings, fast: each row's JSON is made once per $select and pages are
    # joined from those bytes, so listing 50k devices costs the wire, not json.dumps

    def row_bytes(self, cls, select, i):
        r = self.rows[cls][i]
        if select is None:
            return json.dumps(r).encode()
        o = {k: v for k, v in r.items() if k.startswith("@") or k.startswith("__")}
        for name in select:
            o[name] = row_get(r, name)
        return json.dumps(o).encode()

    def listing_body(self, cls, select, skip, size, ctx, host, raw_path, raw_rest):
        key = (cls, tuple(select) if select is not None else None)
        with self.lock:
            cache = self.row_json.get(key)
            if cache is None:
                cache = [self.row_bytes(cls, select, i) for i in range(len(self.rows[cls]))]
                self.row_json[key] = cache
            page = cache[skip:skip + size]
            total = len(cache)
        if select is not None:
            ctx += "(%s)" % ",".join(select)
        parts = [b'{"@odata.context": ', json.dumps(ctx).encode(), b', "value": [',
                 b", ".join(page), b"]"]
        if skip + size < total:
            rest = "&".join(raw_rest + ["$skiptoken=%d" % (skip + size)])
            link = "https://%s%s?%s" % (host, raw_path, rest)
            parts += [b', "@odata.nextLink": ', json.dumps(link).encode()]
        parts.append(b"}")
        return b"".join(parts)

    def flip(self, count=0, macs=(), compliant=None):
        """Changes generated devices' baseline state (1 <-> 2): the devices named by macs, else
        the next count generated devices (a cursor that goes round) whose state is not already
        compliant (when given). Returns [{"mac", "compliant"}] of the devices changed."""
        cls = "SMS_G_System_CI_ComplianceState"
        base = len(self.rows[cls]) - self.generated
        out = []
        with self.lock:
            picks = []
            if macs:
                for m in macs:
                    t = re.sub(r"[:.\-]", "", m or "").upper()
                    i = int(t, 16) - GEN_MAC_PREFIX if re.fullmatch(r"[0-9A-F]{12}", t) else -1
                    if not 0 <= i < self.generated:
                        raise ValueError("not a generated device: %r" % m)
                    picks.append(i)
            else:
                for k in range(self.generated):
                    if len(picks) >= count:
                        break
                    i = (self.flip_next + k) % self.generated
                    now_ok = self.rows[cls][base + i]["ComplianceState"] == 1
                    if compliant is None or now_ok != compliant:
                        picks.append(i)
                if picks:
                    self.flip_next = (picks[-1] + 1) % self.generated
            for i in picks:
                row = self.rows[cls][base + i]
                ok = row["ComplianceState"] != 1 if compliant is None else compliant
                row["ComplianceState"] = 1 if ok else 2
                for (c, sel), cache in self.row_json.items():
                    if c == cls:
                        cache[base + i] = self.row_bytes(cls, sel and list(sel), base + i)
                out.append({"mac": gen_mac(i).replace(":", ""), "compliant": ok})
            for key in [k for k in self.index if k[0] == cls]:
                del self.index[key]  # rebuilt on next use
        return out


def metadata_xml():
    types = []
    for c in CLASSES:
        key = "ResourceId" if c == "SMS_R_System" else "ResourceID"
        props = []
        for name, t in SCHEMA[c].items():
            et = {"int": "Edm.Int64", "str": "Edm.String", "strs": "Collection(Edm.String)"}[t]
            props.append('<Property Name="%s" Type="%s"/>' % (name, et))
        types.append('<EntityType Name="%s"><Key><PropertyRef Name="%s"/></Key>%s</EntityType>'
                     % (c, key, "".join(props)))
    sets = "".join('<EntitySet Name="%s" EntityType="AdminService.%s"/>' % (c, c) for c in CLASSES)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">'
            '<edmx:DataServices><Schema Namespace="AdminService" '
            'xmlns="http://docs.oasis-open.org/odata/ns/edm">%s<EntityContainer Name="Container">'
            '%s</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>\n'
            % ("".join(types), sets)).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120  # IIS's default connection timeout for an idle keep-alive connection

    def setup(self):
        super().setup()
        self.ntlm_challenge = None
        self.ntlm_ok = False  # NTLM authenticates the TCP connection, as IIS does

    def log_message(self, fmt, *a):
        if self.server.sim.args.verbose:
            sys.stderr.write("sccm_sim: %s %s\n" % (self.address_string(), fmt % a))

    # -- plumbing

    def send(self, status, body, ctype="application/json; odata.metadata=minimal",
             headers=(), route=None):
        if route is not None:
            self.server.sim.count(route, status)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        if ctype.startswith("application/json") and route is not None:
            self.send_header("OData-Version", "4.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def odata_error(self, status, message, route, headers=()):
        body = json.dumps({"error": {"code": str(status), "message": message}}).encode()
        self.send(status, body, headers=headers, route=route)

    def do_GET(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def dispatch(self):
        sim = self.server.sim
        raw_path, _, raw_query = self.path.partition("?")
        path = urllib.parse.unquote(raw_path)
        # query: split on '&' then the first '=', each part percent-decoded with '+' as a space
        # (what IIS / ASP.NET do); names and values are kept in order.
        params = []
        if raw_query:
            for part in raw_query.split("&"):
                if not part:
                    continue
                k, _, v = part.partition("=")
                params.append((urllib.parse.unquote_plus(k), urllib.parse.unquote_plus(v), part))
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(min(length, 1 << 20)) if length else b""
        if path.startswith("/_sim/"):
            return self.control(path, params)
        m = re.fullmatch(r"/AdminService/(wmi|v1\.0)/([^/]+)", path)
        route = "other"
        if m:
            route = m.group(2) if m.group(2) in CLASSES and m.group(1) == "wmi" else (
                m.group(1) + "/$metadata" if m.group(2) == "$metadata" else "other")
        with sim.lock:
            faults = dict(sim.faults)
        if faults.get("latency"):
            if sim.stop.wait(faults["latency"] / 1000.0):
                self.close_connection = True
                return
        status_fault = faults.get("status")
        if status_fault:
            hdrs = self.challenges() if status_fault == 401 else ()
            return self.odata_error(status_fault, "simulated fault: HTTP %d" % status_fault,
                                    route, hdrs)
        if not self.authenticate(route):
            return
        if self.command not in ("GET", "HEAD"):
            return self.odata_error(405, "The requested resource does not support http method "
                                    "'%s'." % self.command, route, (("Allow", "GET"),))
        if route == "other":
            return self.odata_error(404, "No HTTP resource was found that matches the request "
                                    "URI '%s'." % path, route)
        if route.endswith("$metadata"):
            return self.send(200, metadata_xml(), "application/xml", route=route)
        self.query(route, params, raw_path, faults)

    def challenges(self):
        sim = self.server.sim
        out = []
        if sim.args.auth in ("ntlm", "both"):
            out.append(("WWW-Authenticate", "NTLM"))
        if sim.args.auth in ("basic", "both"):
            out.append(("WWW-Authenticate", 'Basic realm="%s"' % self.headers.get(
                "Host", "127.0.0.1").split(":")[0]))
        return out

    def authenticate(self, route):
        """True when the request may go on; otherwise the 401 has been sent."""
        sim = self.server.sim
        if sim.user is None or self.ntlm_ok:
            return True
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.strip().partition(" ")
        scheme = scheme.lower()
        token = token.strip()
        if scheme == "basic" and sim.args.auth in ("basic", "both"):
            try:
                u, sep, p = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                u, sep, p = "", "", ""
            want = (sim.domain + "\\" + sim.user) if sim.domain else sim.user
            if sep and u.lower() == want.lower() and hmac.compare_digest(
                    p.encode(), sim.args.password.encode()):
                return True
        elif scheme == "ntlm" and sim.args.auth in ("ntlm", "both") and token:
            try:
                msg = base64.b64decode(token, validate=True)
            except ValueError:
                msg = b""
            mtype = struct.unpack("<I", msg[8:12])[0] if len(msg) >= 12 else 0
            if mtype == 1:
                try:
                    type2, self.ntlm_challenge = ntlm_challenge(msg, sim.domain or "SIM",
                                                                "CM01")
                except ValueError:
                    type2 = None
                if type2:
                    self.odata_error(401, "NTLM challenge", route, (
                        ("WWW-Authenticate", "NTLM " + base64.b64encode(type2).decode()),))
                    return False
            elif mtype == 3 and self.ntlm_challenge:
                challenge, self.ntlm_challenge = self.ntlm_challenge, None
                if ntlm_verify(msg, challenge, sim.user, sim.domain, sim.args.password):
                    self.ntlm_ok = True
                    return True
        self.ntlm_challenge = None
        self.odata_error(401, "401 - Unauthorized: Access is denied due to invalid credentials.",
                         route, self.challenges())
        return False

    def query(self, cls, params, raw_path, faults):
        sim = self.server.sim
        opts, raw_rest = {}, []
        for name, value, raw in params:
            if name.startswith("$"):
                if name not in ("$filter", "$select", "$skiptoken"):
                    return self.odata_error(400, "The query parameter '%s' is not supported."
                                            % name, cls)
                if name in opts:
                    return self.odata_error(400, "The query parameter '%s' is specified more "
                                            "than once." % name, cls)
                opts[name] = value
            if name != "$skiptoken":
                raw_rest.append(raw)
        props = sim.props[cls]
        rows = sim.rows[cls]
        if "$filter" in opts:
            try:
                tree = FilterParser(opts["$filter"], props).parse()
            except FilterError as e:
                return self.odata_error(400, "The query specified in the URI is not valid. %s"
                                        % e, cls)
            rows = filter_rows(sim, cls, tree)
        select = None
        if "$select" in opts:
            select = []
            for name in opts["$select"].split(","):
                p = props.get(name.strip().lower())
                if p is None:
                    return self.odata_error(400, "The query specified in the URI is not valid. "
                                            "Could not find a property named '%s' on type "
                                            "'AdminService.%s'." % (name.strip(), cls), cls)
                select.append(p[0])
        skip = 0
        if "$skiptoken" in opts:
            if not re.fullmatch(r"[0-9]{1,9}", opts["$skiptoken"]):
                return self.odata_error(400, "The skip token value '%s' is not valid."
                                        % opts["$skiptoken"], cls)
            skip = int(opts["$skiptoken"])
        size = sim.args.page_size
        page = rows[skip:skip + size]
        host = self.headers.get("Host") or "127.0.0.1:%d" % self.server.server_address[1]
        if not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", host):
            host = "127.0.0.1:%d" % self.server.server_address[1]
        ctx = "https://%s/AdminService/wmi/$metadata#%s" % (host, cls)
        if "$filter" not in opts:
            body = sim.listing_body(cls, select, skip, size, ctx, host, raw_path, raw_rest)
            return self.answer(cls, body, faults)
        out_rows = []
        for r in page:
            if select is None:
                out_rows.append(dict(r))
                continue
            o = {k: v for k, v in r.items() if k.startswith("@") or k.startswith("__")}
            for name in select:
                o[name] = row_get(r, name)
            out_rows.append(o)
        if select is not None:
            ctx += "(%s)" % ",".join(select)
        doc = {"@odata.context": ctx, "value": out_rows}
        if skip + size < len(rows):
            rest = "&".join(raw_rest + ["$skiptoken=%d" % (skip + size)])
            doc["@odata.nextLink"] = "https://%s%s?%s" % (host, raw_path, rest)
        self.answer(cls, json.dumps(doc).encode(), faults)

    def answer(self, cls, body, faults):
        if faults.get("garbage"):
            return self.send(200, b'{"@odata.context": "garbage", "value": [{"ResourceId": 1,'
                             b' \x00\xff<html>Runtime Error</html>', route=cls)
        if faults.get("huge"):
            return self.send_huge(cls, body, faults["huge"])
        if faults.get("stall"):
            return self.send_stalled(cls, body)
        self.send(200, body, route=cls)

    def send_huge(self, cls, body, mb):
        """A valid JSON answer of about mb megabytes (a long unknown string key)."""
        self.server.sim.count(cls, 200)
        head = body[:-1] + b', "__padding": "'
        tail = b'"}'
        pad = mb * 1024 * 1024
        self.send_response(200)
        self.send_header("Content-Type", "application/json; odata.metadata=minimal")
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

    def send_stalled(self, cls, body):
        """Headers and half the body, then silence until the client goes or the server stops."""
        self.server.sim.count(cls, 200)
        self.send_response(200)
        self.send_header("Content-Type", "application/json; odata.metadata=minimal")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.settimeout(0.5)
        while not self.server.sim.stop.is_set():
            try:
                if not self.connection.recv(4096):
                    return  # the client closed
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                return

    def flip(self, sim):
        """POST /_sim/flip: see Sim.flip and flip_request."""
        js = "application/json"
        try:
            count, macs, want = flip_request(self.body)
            changed = sim.flip(count, macs, want)
        except ValueError as e:
            return self.send(400, json.dumps({"error": str(e)}).encode(), js)
        return self.send(200, json.dumps({"flipped": changed}).encode(), js)

    def control(self, path, params):
        sim = self.server.sim
        q = {k: v for k, v, _ in params}
        if path == "/_sim/counts" and self.command == "GET":
            return self.send(200, json.dumps(sim.snapshot()).encode(), "application/json")
        if path == "/_sim/reset" and self.command == "POST":
            with sim.lock:
                sim.faults.clear()
            sim.reset_counts()
            return self.send(200, b'{"reset": true}', "application/json")
        if path == "/_sim/flip" and self.command == "POST":
            return self.flip(sim)
        if path == "/_sim/fault" and self.command == "POST":
            try:
                sim.set_fault(q.get("name", ""), q.get("value", "0"))
            except ValueError as e:
                return self.send(400, json.dumps({"error": str(e)}).encode(), "application/json")
            return self.send(200, json.dumps(sim.snapshot()["faults"]).encode(),
                             "application/json")
        return self.send(404, b'{"error": "no such control route"}', "application/json")


def flip_request(body):
    """(count, macs, compliant) from a /_sim/flip body: {"count": n} or {"macs": [...]}, and
    optionally "compliant": true|false (the state to set; without it each device toggles)."""
    doc = json.loads(body or b"{}")
    if not isinstance(doc, dict):
        raise ValueError("body must be a JSON object")
    count, macs, want = doc.get("count", 0), doc.get("macs") or [], doc.get("compliant")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError("count must be a non-negative integer")
    if not isinstance(macs, list) or not all(isinstance(m, str) for m in macs):
        raise ValueError("macs must be a list of MAC strings")
    if want is not None and not isinstance(want, bool):
        raise ValueError("compliant must be true or false")
    return count, macs, want


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, sim, ctx):
        self.sim = sim
        self.ctx = ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's own thread, so a client that stalls in
        # the handshake does not block accept().
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
    ap = argparse.ArgumentParser(description="ConfigMgr AdminService simulator")
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--cert", required=True, help="PEM chain to serve")
    ap.add_argument("--key", required=True)
    ap.add_argument("--data", help="JSON data set (tests/sim/sccm_data.json)")
    ap.add_argument("--generate", type=int, metavar="N",
                    help="add N generated devices (MACs 00:50:57:xx:xx:xx), for benchmarks")
    ap.add_argument("--seed", type=int, default=1, help="--generate's random seed")
    ap.add_argument("--noncompliant-share", type=float, default=0.1,
                    help="share of generated devices with a non-compliant baseline")
    ap.add_argument("--user", help="DOMAIN\\user; without it no authentication is asked")
    ap.add_argument("--password")
    ap.add_argument("--auth", choices=("basic", "ntlm", "both"), default="both")
    ap.add_argument("--page-size", type=int, default=1000)
    ap.add_argument("--fault", action="append", help="NAME=VALUE, e.g. status=500, latency=200")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.user and args.password is None:
        ap.error("--user needs --password")
    if args.page_size < 1:
        ap.error("--page-size must be at least 1")
    if not args.data and args.generate is None:
        ap.error("--data or --generate is required (--generate 0: a simulator listing nothing)")
    args.generate = args.generate or 0
    if not 0 <= args.generate <= 0xFFFFFF:
        ap.error("--generate must be 0 to 16777215")
    if not 0.0 <= args.noncompliant_share <= 1.0:
        ap.error("--noncompliant-share must be between 0 and 1")
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
