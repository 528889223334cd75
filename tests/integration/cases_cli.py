"""Integration cases for the operator CLI (`mdmgw action|actions|resolve|block|unblock`, see
gateway/app/cli.h): the real binary as a client.

- case_cli_against_admin_sim: against tests/sim/admin_sim.py, a separate process speaking the admin
  actions API over real TLS with the dev certificates (make certs). Checks what goes on the wire
  (Idempotency-Key, Basic auth, bodies, paths under an instance), that only the given CA is
  trusted, and the exit code of each answer. Listed in cases.all_cases().
- case_cli_gateway_*: against a real gateway on the demo inventory (the admin actions API).
"""
import base64
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import time

from lib import CA, CERTS, ROOT, free_port

ADMIN_SIM = os.path.join(ROOT, "tests", "sim", "admin_sim.py")
ACTION_ID = "0123456789abcdef0123456789abcdef"


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def cli(env, args, client_config=None, password=None, timeout=60):
    """Runs `mdmgw ARGS`; (exit code, stdout, stderr). The caller's MDMGW_* settings are not
    inherited: each case says what the CLI gets."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("MDMGW_")}
    if client_config:
        e["MDMGW_CLIENT_CONFIG"] = client_config
    if password is not None:
        e["MDMGW_PASSWORD"] = password
    r = subprocess.run([env.binary] + list(args), capture_output=True, timeout=timeout, env=e)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def expect(env, args, rc, out=None, err=None, **kw):
    got, o, e = cli(env, args, **kw)
    _check(got == rc and (out is None or out in o) and (err is None or err in e),
           "mdmgw %s: exit %d (want %d)\nstdout:\n%s\nstderr:\n%s" % (" ".join(args), got, rc,
                                                                      o, e))
    return o, e


def client_config(d, url, user, password, ca=CA, name="client.json"):
    """A client config file (0600) whose password is in a file next to it."""
    with open(os.path.join(d, "pw"), "w") as f:
        f.write(password + "\n")
    path = os.path.join(d, name)
    with open(path, "w") as f:
        json.dump({"url": url, "user": user, "password": {"file": "pw"}, "ca_file": ca}, f)
    os.chmod(path, 0o600)
    return path


class AdminSim:
    """tests/sim/admin_sim.py on a free port with the dev server certificate; stopped by pid."""

    def __init__(self, d, user, password, instance="inst"):
        self.log = os.path.join(d, "admin-sim.log")
        open(self.log, "w").close()
        self.proc = subprocess.Popen(
            [sys.executable, ADMIN_SIM, "--port", "0", "--cert", os.path.join(CERTS, "server.pem"),
             "--key", os.path.join(CERTS, "server-key.pem"), "--user", user, "--password",
             password, "--log", self.log, "--instance", instance],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line, limit = b"", time.monotonic() + 15
        while not line.endswith(b"\n"):
            left = limit - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("admin simulator not READY: %r" % line)
            if select.select([self.proc.stdout], [], [], left)[0]:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    raise AssertionError("admin simulator exited: %r" % self.proc.stderr.read())
                line += c
        _check(line.startswith(b"READY "), "admin simulator said %r" % line)
        self.port = int(line.split()[1])
        self.url = "https://127.0.0.1:%d/%s" % (self.port, instance)

    def requests(self):
        with open(self.log) as f:
            return [json.loads(x) for x in f if x.strip()]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _other_ca(d):
    """A CA that did not sign the dev server certificate."""
    key, pem = os.path.join(d, "other-ca-key.pem"), os.path.join(d, "other-ca.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
                        "-days", "2", "-subj", "/CN=not the mdmgw dev CA"],
                       capture_output=True, timeout=60)
    _check(r.returncode == 0, "openssl: %r" % r.stderr)
    return pem


def case_cli_against_admin_sim(env):
    """The CLI's I/O path against a stand-in of the admin API: headers and bodies on the wire,
    the instance path, Basic auth, only the given CA trusted, and the exit code of 200, 403,
    409, 422, 502 (with and without an action object), 503, 401, 404, no server, a timeout."""
    d = tempfile.mkdtemp(prefix="mdmgw-cli-")
    sim = AdminSim(d, "boss", "sim pw:1")
    try:
        cc = client_config(d, sim.url + "/", "boss", "sim pw:1")
        run = dict(client_config=cc)

        # action without --key: a fresh key, printed first, sent as Idempotency-Key
        out, _ = expect(env, ["action", "dev-200", "corporate_wipe"], 0,
                        "state         sent", **run)
        m = re.match(r"idempotency key: ([0-9a-f]{32})\n", out)
        _check(m, "no key printed first: %r" % out)
        req = sim.requests()[-1]
        _check(req["method"] == "POST" and req["path"] == "/api/v1/devices/dev-200/actions",
               "request %r" % req)
        _check(req["idempotency_key"] == m.group(1), "key sent %r" % req["idempotency_key"])
        auth = "Basic " + base64.b64encode(b"boss:sim pw:1").decode()
        _check(req["authorization"] == auth, "authorization %r" % req["authorization"])
        _check(req["content_type"] == "application/json", "content type %r" % req)
        _check(json.loads(req["body"]) == {"action": "corporate_wipe"}, "body %r" % req["body"])
        key1 = m.group(1)
        expect(env, ["action", "dev-200", "corporate_wipe"], 0, **run)
        _check(sim.requests()[-1]["idempotency_key"] != key1, "the same key twice")

        # --key: sent as given, not printed; the flag overrides the file's URL
        bad_cc = client_config(d, "https://127.0.0.1:%d" % free_port(), "boss", "sim pw:1",
                               name="elsewhere.json")
        out, _ = expect(env, ["action", "--url", sim.url, "--key", "retry-7", "dev-200",
                              "pin_lock"], 0, "action " + ACTION_ID, client_config=bad_cc)
        _check("idempotency key" not in out, "a given key is printed: %r" % out)
        req = sim.requests()[-1]
        _check(req["idempotency_key"] == "retry-7" and
               json.loads(req["body"]) == {"action": "pin_lock"}, "request %r" % req)

        # every answer class and its exit code
        for dev, rc, err in (
                ("dev-403", 1, "refused: full wipe of a personal device"),
                ("dev-403e", 1, "refused (HTTP 403): account wiper may not use full_wipe"),
                ("dev-409", 1, "conflict: action %s is unknown" % ACTION_ID),
                ("dev-422", 1, "refused (HTTP 422): this Idempotency-Key was used for another "
                               "request (first action: %s)" % ACTION_ID),
                ("dev-502f", 1, "failed (failed): MDM unreachable: connection refused"),
                ("dev-502r", 1, "rejected by the MDM: device not enrolled"),
                ("dev-502e", 2, "gateway error (HTTP 502): upstream proxy error"),
                ("dev-503", 2, "gateway error (HTTP 503): the action journal is unavailable")):
            expect(env, ["action", dev, "full_wipe"], rc, err=err, **run)

        # the other commands: method, path, query and body on the wire
        n = len(sim.requests())
        expect(env, ["actions", "--state", "unknown", "--device", "dev 9"], 0,
               "%s  unknown" % ACTION_ID, **run)
        expect(env, ["resolve", ACTION_ID, "not_sent", "--note", "checked \"console\""], 0,
               "state         resolved_not_sent", **run)
        expect(env, ["resolve", "f" * 32, "sent"], 1, err="refused (HTTP 404): no action", **run)
        expect(env, ["block", "dev-1", "--note", "stolen"], 0,
               "dev-1: blocked by boss at 2024-05-01T12:00:00Z (note: stolen)", **run)
        expect(env, ["block", "dev-2"], 0, "dev-2: blocked by boss", **run)
        expect(env, ["unblock", "dev-1"], 0, "dev-1: not blocked", **run)
        expect(env, ["unblock", "dev-404"], 1, err="device dev-404 is not blocked", **run)
        got = [(r["method"], r["path"], r["query"], r["body"]) for r in sim.requests()[n:]]
        want = [("GET", "/api/v1/actions", {"device": "dev 9", "state": "unknown"}, ""),
                ("POST", "/api/v1/actions/%s/resolve" % ACTION_ID, {},
                 '{"result":"not_sent","note":"checked \\"console\\""}'),
                ("POST", "/api/v1/actions/%s/resolve" % ("f" * 32), {},
                 '{"result":"sent"}'),
                ("PUT", "/api/v1/devices/dev-1/block", {}, '{"note":"stolen"}'),
                ("PUT", "/api/v1/devices/dev-2/block", {}, ""),
                ("DELETE", "/api/v1/devices/dev-1/block", {}, ""),
                ("DELETE", "/api/v1/devices/dev-404/block", {}, "")]
        _check(got == want, "requests on the wire:\n%r\nwant\n%r" % (got, want))
        _check(all(r["idempotency_key"] is None for r in sim.requests()[n:]),
               "an Idempotency-Key on a call that is not an action")

        # credentials from the flags and environment; a wrong password is a 401: exit 2
        n = len(sim.requests())
        flags = ["--url", sim.url, "--user", "boss", "--ca", CA]
        expect(env, ["actions"] + flags, 0, password="sim pw:1")
        expect(env, ["actions"] + flags, 2, err="authentication failed (HTTP 401)",
               password="wrong")

        # only the given CA: another one makes the handshake fail before anything is sent
        expect(env, ["action", "--ca", _other_ca(d), "dev-200", "pin_lock"], 2,
               err="TLS: the gateway's certificate is not trusted by", **run)
        _check(len(sim.requests()) == n + 1, "a request went through an untrusted TLS link")

        # no server; no answer in time (the key to repeat the request with is given)
        expect(env, ["actions", "--url", "https://127.0.0.1:%d" % free_port()], 2,
               err="cannot reach https://127.0.0.1:", **run)
        out, err = expect(env, ["action", "--timeout", "1", "dev-slow", "pin_lock"], 2,
                          err="within 1 s", **run)
        key = re.match(r"idempotency key: ([0-9a-f]{32})\n", out).group(1)
        _check("repeat the same command with --key %s " % key in err, "no hint: %r" % err)
    finally:
        sim.stop()
        subprocess.run(["rm", "-rf", d])


# --- against a real gateway ---------------------------------------------------------------------

PW = {"boss": "boss-password-1", "wiper": "wiper-password-1", "demo": "mdmgw-demo"}
CORPORATE = "64:31:50:10:DA:60"  # demo inventory: corporate, compliant
PERSONAL = "3C:28:6D:11:22:33"   # demo inventory: personal


def _actions_api_or_skip(gw, name):
    r = gw.request("GET", "/api/v1/actions", user="boss")
    if r.status != 200:
        raise AssertionError("%s: GET /api/v1/actions answered %d" % (name, r.status))
    return True


def _gateway_cc(gw, d, user):
    return client_config(d, "https://127.0.0.1:%d" % gw.port, user, PW[user],
                         name=user + ".json")


def case_cli_gateway_action_flow(env):
    """mdmgw action/actions/resolve through a real gateway on the demo inventory: a pin lock is
    sent (exit 0), repeated with its key gives the same action, the key with another action is
    422 (exit 1), a query-only account is refused (exit 1), a full wipe of a personal device is
    refused by policy (exit 1), resolve of a sent action is a conflict (exit 1), a wrong
    password is exit 2."""
    gw = env.gateway(name="cli").start()
    d = tempfile.mkdtemp(prefix="mdmgw-cli-")
    try:
        if not _actions_api_or_skip(gw, "case_cli_gateway_action_flow"):
            return
        boss = dict(client_config=_gateway_cc(gw, d, "boss"))
        out, _ = expect(env, ["action", CORPORATE, "pin_lock"], 0, "state         sent", **boss)
        key = re.match(r"idempotency key: ([0-9a-f]{32})\n", out).group(1)
        aid = re.search(r"action ([0-9a-f]{32})\n", out).group(1)
        expect(env, ["action", "--key", key, CORPORATE, "pin_lock"], 0, "action " + aid,
               **boss)
        expect(env, ["action", "--key", key, CORPORATE, "corporate_wipe"], 1,
               err="(HTTP 422)", **boss)
        expect(env, ["actions", "--device", CORPORATE], 0, aid + "  sent", **boss)
        expect(env, ["actions", "--state", "unknown"], 0, "no actions", **boss)
        expect(env, ["resolve", aid, "sent"], 1, **boss)
        expect(env, ["action", PERSONAL, "full_wipe"], 1, "state         refused",
               "refused: ", **boss)
        expect(env, ["action", CORPORATE, "pin_lock"], 1, err="(HTTP 403)",
               client_config=_gateway_cc(gw, d, "demo"))
        expect(env, ["actions", "--url", "https://127.0.0.1:%d" % gw.port, "--user", "boss",
                     "--ca", CA], 2, err="authentication failed (HTTP 401)", password="nope")
    finally:
        gw.stop()
        gw.cleanup()
        subprocess.run(["rm", "-rf", d])


def case_cli_gateway_block(env):
    """mdmgw block/unblock through a real gateway: blocked (exit 0), seen by the NAC as not
    compliant, unblocked (exit 0), unblocking again is a 404 (exit 1)."""
    gw = env.gateway(name="cli").start()
    d = tempfile.mkdtemp(prefix="mdmgw-cli-")
    try:
        if not _actions_api_or_skip(gw, "case_cli_gateway_block"):
            return
        boss = dict(client_config=_gateway_cc(gw, d, "boss"))
        expect(env, ["block", CORPORATE, "--note", "stolen"], 0, ": blocked by boss", **boss)
        r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress"
                       "&value=64315010DA60&filter=all", user="demo")
        _check(b"blocked by administrator" in r.body, "NAC answer %r" % r.body)
        expect(env, ["unblock", CORPORATE], 0, ": not blocked", **boss)
        expect(env, ["unblock", CORPORATE], 1, err="(HTTP 404)", **boss)
    finally:
        gw.stop()
        gw.cleanup()
        subprocess.run(["rm", "-rf", d])


GATEWAY_CASES = [case_cli_gateway_action_flow, case_cli_gateway_block]
