#!/usr/bin/env python3
"""Cisco ISE Monitoring (MnT) REST simulator for mdmgw's CoA tests, standard library only.

  mnt_sim.py --port P --cert server.pem --key server-key.pem --user U --password PW [--verbose]

Serves, behind Basic auth:
  GET /admin/API/mnt/Session/MACAddress/<AA:BB:CC:DD:EE:FF>   the session (404 when none)
  GET /admin/API/mnt/CoA/Reauth/<psn>/<MAC>/<type>
  GET /admin/API/mnt/CoA/Disconnect/<psn>/<MAC>/<port option>/<nas ip>/<endpoint ip>
answering <remoteCoA requestType="reauth"><results>true</results></remoteCoA>.
Control (no auth, for tests):
  POST /_sim/session?mac=AABBCCDDEEFF&psn=ise-psn1&nas_ip=10.0.0.1&framed_ip=10.0.0.9
  POST /_sim/fault?name=results|status|latency&value=V   (results=false, status=500, latency=ms)
  POST /_sim/reset        GET /_sim/calls   (every MnT call: path, auth ok, time)
Prints "READY <port>" once listening; SIGTERM/SIGINT stop it with exit code 0.
"""
import argparse
import base64
import hmac
import json
import re
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Sim:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            self.sessions = {}
            self.calls = []
            self.faults = {}


def mac_key(s):
    t = re.sub(r"[:.\-]", "", s).upper()
    return t if re.fullmatch(r"[0-9A-F]{12}", t) else None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if self.server.sim.args.verbose:
            sys.stderr.write(fmt % a + "\n")

    def send(self, status, body, ctype="application/xml"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def authorized(self):
        a = self.server.sim.args
        want = "Basic " + base64.b64encode(("%s:%s" % (a.user, a.password)).encode()).decode()
        return hmac.compare_digest(self.headers.get("Authorization", ""), want)

    def do_POST(self):
        sim = self.server.sim
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if u.path == "/_sim/session":
            mac = mac_key(q.get("mac", ""))
            if not mac:
                return self.send(400, "bad mac", "text/plain")
            with sim.lock:
                if q.get("delete"):
                    sim.sessions.pop(mac, None)
                else:
                    sim.sessions[mac] = {"psn": q.get("psn", "ise-psn1"),
                                         "nas_ip": q.get("nas_ip", "10.0.0.1"),
                                         "framed_ip": q.get("framed_ip", "10.0.0.9")}
            return self.send(200, "{}", "application/json")
        if u.path == "/_sim/fault":
            with sim.lock:
                sim.faults[q.get("name")] = q.get("value")
            return self.send(200, "{}", "application/json")
        if u.path == "/_sim/reset":
            sim.reset()
            return self.send(200, "{}", "application/json")
        self.send(404, "not found", "text/plain")

    def do_GET(self):
        sim = self.server.sim
        path = urllib.parse.urlsplit(self.path).path
        if path == "/_sim/calls":
            with sim.lock:
                return self.send(200, json.dumps({"calls": sim.calls}), "application/json")
        ok = self.authorized()
        with sim.lock:
            sim.calls.append({"path": path, "auth": ok, "at": time.time()})
            faults = dict(sim.faults)
        if not ok:
            return self.send(401, "unauthorized", "text/plain")
        if faults.get("latency"):
            sim.stop.wait(int(faults["latency"]) / 1000.0)
        if faults.get("status"):
            return self.send(int(faults["status"]), "<error>fault</error>")
        parts = path.split("/")
        # ['', 'admin', 'API', 'mnt', kind, ...]
        if len(parts) < 6 or parts[1:4] != ["admin", "API", "mnt"]:
            return self.send(404, "not found", "text/plain")
        if parts[4] == "Session" and parts[5] == "MACAddress" and len(parts) == 7:
            with sim.lock:
                s = sim.sessions.get(mac_key(parts[6]) or "")
            if not s:
                return self.send(404, "")
            return self.send(200, (
                "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>"
                "<sessionParameters><passed xsi:type=\"xs:boolean\" "
                "xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" "
                "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">true</passed>"
                "<calling_station_id>%s</calling_station_id>"
                "<acs_server>%s</acs_server><nas_ip_address>%s</nas_ip_address>"
                "<framed_ip_address>%s</framed_ip_address></sessionParameters>"
                % (parts[6], s["psn"], s["nas_ip"], s["framed_ip"])))
        if parts[4] == "CoA" and parts[5] in ("Reauth", "Disconnect"):
            want = 9 if parts[5] == "Reauth" else 11
            if len(parts) != want:
                return self.send(400, "<error>bad CoA path</error>")
            res = "false" if faults.get("results") == "false" else "true"
            return self.send(200, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                             "<remoteCoA requestType=\"%s\"><results>%s</results></remoteCoA>"
                             % (parts[5].lower(), res))
        self.send(404, "not found", "text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, sim, ctx):
        self.sim = sim
        self.ctx = ctx
        super().__init__(addr, Handler)

    def finish_request(self, request, client_address):
        try:
            request.settimeout(30)
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
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


def serve(args, sim, handler_server=Server):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    server = handler_server((args.address, args.port), sim, ctx)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    print("READY %d" % server.server_address[1], flush=True)
    while not done.wait(0.5):
        pass
    sim.stop.set()
    server.shutdown()
    server.server_close()
    return 0


def main():
    ap = argparse.ArgumentParser(description="ISE MnT REST (CoA) simulator")
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    return serve(args, Sim(args))


if __name__ == "__main__":
    sys.exit(main())
