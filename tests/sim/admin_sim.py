#!/usr/bin/env python3
"""A stand-in for the gateway's admin actions API (/work/brief-actions-api.md contract), just
enough to test the `mdmgw action|actions|resolve|block|unblock` client's I/O path: TLS, Basic
auth, headers, bodies and what the client does with each status.

  admin_sim.py --port 0 --cert PEM --key PEM --user U --password P --log FILE [--instance I]

Prints `READY <port>` once listening; SIGTERM stops it (exit 0). Every request that reaches a
route is appended to FILE as one JSON line {method, path, query, idempotency_key, authorization,
content_type, body}. The device (or action id) picks the answer, so one simulator serves every case:

  device dev-200  -> 200 action "sent"          device dev-403  -> 403 action "refused"
  device dev-403e -> 403 {"error"}              device dev-409  -> 409 action "unknown"
  device dev-422  -> 422 {"error","action_id"}  device dev-502f -> 502 action "failed"
  device dev-502r -> 502 action "rejected"      device dev-502e -> 502 {"error"} (no object)
  device dev-503  -> 503 {"error"}              device dev-slow -> 200 after 5 s
Python 3 standard library only.
"""
import argparse
import base64
import json
import signal
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACTION_ID = "0123456789abcdef0123456789abcdef"


def action(device, state, detail="", act="corporate_wipe", user="boss"):
    return {"action_id": ACTION_ID, "state": state, "action": act, "device": device,
            "mdm": "sim-mdm", "vendor_id": "v-" + device, "user": user,
            "source": "127.0.0.1", "detail": detail,
            "requested_at": "2024-05-01T12:00:00.000Z",
            "completed_at": None if state in ("pending", "unknown") else
            "2024-05-01T12:00:01.000Z", "resolved_by": None, "note": None}


ACTION_ANSWERS = {
    "dev-200": (200, lambda d, a: action(d, "sent", act=a)),
    "dev-403": (403, lambda d, a: action(d, "refused", "full wipe of a personal device", a)),
    "dev-403e": (403, lambda d, a: {"error": "account wiper may not use full_wipe"}),
    "dev-409": (409, lambda d, a: action(d, "unknown", act=a)),
    "dev-422": (422, lambda d, a: {"error": "this Idempotency-Key was used for another request",
                                   "action_id": ACTION_ID}),
    "dev-502f": (502, lambda d, a: action(d, "failed", "MDM unreachable: connection refused", a)),
    "dev-502r": (502, lambda d, a: action(d, "rejected", "device not enrolled", a)),
    "dev-502e": (502, lambda d, a: {"error": "upstream proxy error"}),
    "dev-503": (503, lambda d, a: {"error": "the action journal is unavailable"}),
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorised(self):
        want = "Basic " + base64.b64encode(
            ("%s:%s" % (self.server.user, self.server.password)).encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        body = b'{"error": "authentication required"}'
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="mdmgw"')
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        return False

    def record(self, path, query, body):
        entry = {"method": self.command, "path": path, "query": query,
                 "idempotency_key": self.headers.get("Idempotency-Key"),
                 "authorization": self.headers.get("Authorization"),
                 "content_type": self.headers.get("Content-Type"),
                 "body": body.decode("utf-8", "replace")}
        with self.server.lock, open(self.server.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        url = urllib.parse.urlsplit(self.path)
        prefix = "/" + self.server.instance if self.server.instance else ""
        if not url.path.startswith(prefix + "/api/v1/"):
            return self.answer(404, {"error": "no such route"})
        path = urllib.parse.unquote(url.path[len(prefix):])
        query = dict(urllib.parse.parse_qsl(url.query))
        if not self.authorised():
            return
        self.record(path, query, body)
        parts = path.strip("/").split("/")  # api v1 ...
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            return self.answer(400, {"error": "the body is not JSON"})
        if self.command == "POST" and len(parts) == 5 and parts[2] == "devices" \
                and parts[4] == "actions":
            return self.post_action(parts[3], doc)
        if self.command == "GET" and parts[2:] == ["actions"]:
            acts = [action(query.get("device", "dev-200"), query.get("state", "sent"))]
            return self.answer(200, {"actions": acts})
        if self.command == "POST" and len(parts) == 5 and parts[2] == "actions" \
                and parts[4] == "resolve":
            if parts[3] != ACTION_ID:
                return self.answer(404, {"error": "no action %s" % parts[3]})
            a = action("dev-409", "resolved_" + doc["result"])
            a.update(resolved_by=self.server.user, note=doc.get("note"))
            return self.answer(200, a)
        if len(parts) == 5 and parts[2] == "devices" and parts[4] == "block":
            if self.command == "PUT":
                return self.answer(200, {"device": parts[3], "blocked": True,
                                         "by": self.server.user, "at": "2024-05-01T12:00:00Z",
                                         "note": (doc or {}).get("note")})
            if self.command == "DELETE":
                if parts[3] == "dev-404":
                    return self.answer(404, {"error": "device dev-404 is not blocked"})
                return self.answer(200, {"device": parts[3], "blocked": False})
        return self.answer(404, {"error": "no such route"})

    def post_action(self, device, doc):
        key = self.headers.get("Idempotency-Key")
        if not key:
            return self.answer(400, {"error": "an Idempotency-Key header is required"})
        if not isinstance(doc, dict) or set(doc) != {"action"} or doc["action"] not in (
                "corporate_wipe", "full_wipe", "pin_lock"):
            return self.answer(400, {"error": "the body must be {\"action\": ...}"})
        if device == "dev-slow":
            time.sleep(5)
            device = "dev-200"
        if device not in ACTION_ANSWERS:
            return self.answer(400, {"error": "unknown test device %s" % device})
        status, make = ACTION_ANSWERS[device]
        return self.answer(status, make(device, doc["action"]))

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--instance", default="")
    a = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    srv.daemon_threads = True
    srv.user, srv.password, srv.log, srv.instance = a.user, a.password, a.log, a.instance
    srv.lock = threading.Lock()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    print("READY %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    srv.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
