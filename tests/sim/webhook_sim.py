#!/usr/bin/env python3
"""Webhook receiver simulator for mdmgw's CoA webhook sink, standard library only.

  webhook_sim.py --port P --cert server.pem --key server-key.pem --secret S
                 [--window SECONDS] [--path /hook] [--verbose]

POST <path> with JSON and X-Mdmgw-Signature: t=<unix>,v1=<hex HMAC-SHA256("<t>.<body>")>:
the signature is checked with the secret and t must be within --window (default 300) seconds
of now; a good one is recorded (with its X-Mdmgw-Event-Id) and answered 204, a bad one 401.
Control (for tests):
  POST /_sim/fail?count=N&status=500   the next N good requests get that status (not recorded)
  POST /_sim/reset        GET /_sim/events   {"events": [...], "rejected": n, "failed": n}
Prints "READY <port>" once listening; SIGTERM/SIGINT stop it with exit code 0.
"""
import argparse
import hashlib
import hmac
import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from mnt_sim import Server, serve


class Sim:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.reset()

    def reset(self):
        with self.lock:
            self.events = []
            self.rejected = 0
            self.failed = 0
            self.fail_left = 0
            self.fail_status = 500


def verify(secret, header, body, window):
    """None when header signs body within window, else why not."""
    try:
        fields = dict(p.split("=", 1) for p in header.split(","))
        t = int(fields["t"])
        v1 = fields["v1"]
    except (ValueError, KeyError):
        return "malformed signature header"
    if abs(time.time() - t) > window:
        return "timestamp outside the window"
    want = hmac.new(secret.encode(), b"%d." % t + body, hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(want, v1) else "bad signature"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if self.server.sim.args.verbose:
            sys.stderr.write(fmt % a + "\n")

    def send(self, status, obj=None):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        sim = self.server.sim
        if urllib.parse.urlsplit(self.path).path != "/_sim/events":
            return self.send(404, {"error": "not found"})
        with sim.lock:
            return self.send(200, {"events": sim.events, "rejected": sim.rejected,
                                   "failed": sim.failed})

    def do_POST(self):
        sim = self.server.sim
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if u.path == "/_sim/fail":
            with sim.lock:
                sim.fail_left = int(q.get("count", "1"))
                sim.fail_status = int(q.get("status", "500"))
            return self.send(200, {})
        if u.path == "/_sim/reset":
            sim.reset()
            return self.send(200, {})
        if u.path != sim.args.path:
            return self.send(404, {"error": "not found"})
        why = None
        if self.headers.get("Content-Type") != "application/json":
            why = "content type is not application/json"
        else:
            why = verify(sim.args.secret, self.headers.get("X-Mdmgw-Signature", ""), body,
                         sim.args.window)
        with sim.lock:
            if why:
                sim.rejected += 1
                return self.send(401, {"error": why})
            if sim.fail_left > 0:
                sim.fail_left -= 1
                sim.failed += 1
                return self.send(sim.fail_status, {"error": "fault"})
            try:
                ev = json.loads(body)
            except ValueError:
                sim.rejected += 1
                return self.send(400, {"error": "not JSON"})
            sim.events.append({"event_id": self.headers.get("X-Mdmgw-Event-Id"), "body": ev})
        self.send(204)


class WebhookServer(Server):
    def __init__(self, addr, sim, ctx):
        self.sim = sim
        self.ctx = ctx
        super(Server, self).__init__(addr, Handler)


def main():
    ap = argparse.ArgumentParser(description="signed webhook receiver simulator")
    ap.add_argument("--port", type=int, required=True, help="0 picks a free port")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--secret", required=True)
    ap.add_argument("--window", type=int, default=300)
    ap.add_argument("--path", default="/hook")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    return serve(args, Sim(args), WebhookServer)


if __name__ == "__main__":
    sys.exit(main())
