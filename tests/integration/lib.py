"""Shared pieces of the integration suite: free ports, accounts, a gateway process, HTTPS calls.

Everything runs on loopback. Servers are started here and stopped by pid, never by name.
"""
import base64
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CERTS = os.path.join(ROOT, "certs")
CA = os.path.join(CERTS, "ca.pem")

# Accounts used by the tests: user -> (password, roles).
ACCOUNTS = {
    "demo": ("mdmgw-demo", ["query"]),
    "nac": ("nac-password-1", ["query"]),
    "wiper": ("wiper-password-1", ["action"]),
    "boss": ("boss-password-1", ["query", "action", "admin"]),
}


def scrypt_line(password, ln=15, r=8, p=1):
    """The account hash line mdmgw expects, made the same way `mdmgw passwd` makes it."""
    salt = os.urandom(16)
    h = hashlib.scrypt(password.encode(), salt=salt, n=1 << ln, r=r, p=p, maxmem=128 << 20,
                       dklen=32)
    return "$scrypt$ln=%d,r=%d,p=%d$%s$%s" % (ln, r, p, base64.b64encode(salt).decode(),
                                             base64.b64encode(h).decode())


_LINES = {}


def account_list():
    out = []
    for user, (pw, roles) in ACCOUNTS.items():
        if user not in _LINES:
            _LINES[user] = scrypt_line(pw)
        out.append({"user": user, "password_hash": _LINES[user], "roles": roles})
    return out


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def basic(user):
    pw = ACCOUNTS[user][0]
    return "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()


def tls_context():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


class Memcached:
    """A real memcached on a free loopback port, stopped by pid."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(self.port), "-U",
                                      "0", "-m", "64", "-t", "2", "-u", "nobody"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        limit = time.monotonic() + 10
        while time.monotonic() < limit:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("memcached did not start on port %d" % self.port)

    def command(self, line):
        """One text-protocol command; returns the raw reply (up to END/STORED/...)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as c:
            c.sendall(line)
            data = b""
            while not any(data.endswith(t) for t in (b"END\r\n", b"STORED\r\n", b"DELETED\r\n",
                                                     b"NOT_FOUND\r\n", b"ERROR\r\n", b"OK\r\n")):
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            return data

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        self.proc = None


class SilentServer:
    """Accepts TCP connections and reads, but never answers: a hung memcached."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.stopped = False
        import threading
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)  # held open, never read from or written to
            except OSError:
                continue

    def stop(self):
        self.stopped = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")


class Gateway:
    """One mdmgw process on a free loopback port, with a config the test shapes."""

    def __init__(self, binary, valgrind=False, inventory=None, overrides=None, name="gw"):
        self.binary = binary
        self.valgrind = valgrind
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="mdmgw-it-")
        self.log_path = os.path.join(self.dir, "gateway.log")
        self.name = name
        inv = inventory or os.path.join(ROOT, "conf", "demo-inventory.json")
        cfg = {
            "listen": {
                "address": "127.0.0.1",
                "port": self.port,
                "cert_file": os.path.join(CERTS, "server.pem"),
                "key_file": os.path.join(CERTS, "server-key.pem"),
                "threads": 2,
                "header_timeout": "2s",
                "body_timeout": "3s",
                "max_body": 262144,
                "header_memory": 16384,
                "shutdown_grace": "5s",
            },
            "api": {"query_max_size": 5000, "redirect_url": "https://enroll.example.com/",
                    "vendor": "mdmgw", "product_name": "mdmgw test",
                    "lookup_timeout": "2s" if valgrind else "500ms"},
            "auth": {"fail_limit": 3, "fail_window": "60s", "lockout": "30s"},
            "accounts": account_list(),
            "adapters": [{"name": "inventory", "type": "inventory", "file": inv}],
            "state_dir": os.path.join(self.dir, "state"),
            "log_level": "debug",
        }
        for section, values in (overrides or {}).items():
            if isinstance(values, dict):
                cfg.setdefault(section, {}).update(values)
            else:
                cfg[section] = values
        self.config = cfg
        self.config_path = os.path.join(self.dir, "mdmgw.json")
        with open(self.config_path, "w") as f:
            json.dump(cfg, f, indent=1)
        os.chmod(self.config_path, 0o600)
        self.proc = None

    def command(self):
        cmd = [self.binary, "run", "-c", self.config_path]
        if self.valgrind:
            cmd = ["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite",
                   "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                   "--suppressions=" + os.path.join(ROOT, "tests", "valgrind.supp")] + cmd
        return cmd

    def start(self, wait=True):
        self.logf = open(self.log_path, "wb")
        env = dict(os.environ, MDMGW_TEST_HMAC_KEY="integration-test-hmac-key-0123456789")
        self.proc = subprocess.Popen(self.command(), stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        limit = time.monotonic() + (180 if self.valgrind else 30)
        while time.monotonic() < limit:
            if self.proc.poll() is not None:
                raise AssertionError("gateway exited early (%s):\n%s" % (self.proc.returncode,
                                                                         self.log()))
            try:
                r = self.request("GET", "/healthz", user=None, timeout=5)
                if r.status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise AssertionError("gateway not ready:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def connect(self, timeout=30):
        return http.client.HTTPSConnection("127.0.0.1", self.port, context=tls_context(),
                                           timeout=timeout * (4 if self.valgrind else 1))

    def request(self, method, target, user="demo", body=None, headers=None, conn=None,
                timeout=30, auth=None):
        own = conn is None
        c = conn or self.connect(timeout)
        h = dict(headers or {})
        if auth is not None:
            h["Authorization"] = auth
        elif user:
            h["Authorization"] = basic(user)
        try:
            c.request(method, target, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return Response(r.status, r.getheaders(), data)
        finally:
            if own:
                c.close()

    def raw_request(self, method, target, body=b"", user="demo", timeout=30):
        """Sends headers and body on a raw TLS socket, ignoring a send that fails because the
        server already answered (an early 413), then reads whatever answer came back."""
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s = tls_context().wrap_socket(raw, server_hostname="localhost")
        head = ("%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (method, target, basic(user), len(body))).encode()
        data = b""
        try:
            try:
                s.sendall(head + body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass
            while True:
                try:
                    chunk = s.recv(65536)
                except (ConnectionResetError, ssl.SSLError):
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        head, _, rest = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/") else 0
        return Response(status, [], rest)

    def metrics(self):
        """The /metrics counters as a dict name -> value (labels kept in the name)."""
        r = self.request("GET", "/metrics", user="boss")
        if r.status != 200:
            raise AssertionError("metrics: %d" % r.status)
        out = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals by pid and waits; returns the exit code."""
        if not self.proc:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout or (240 if self.valgrind else 30))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("gateway did not stop in time:\n" + self.log()[-4000:])
        finally:
            self.logf.close()
        self.proc = None
        return rc

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


SIM_DIR = os.path.join(ROOT, "tests", "sim")
SIM_USER, SIM_PASSWORD = "CORP\\svc-ise", "S3cret!pw 'x'"


class SccmSim:
    """The SCCM AdminService simulator (tests/sim/sccm_sim.py) as a separate process on a free
    port, with its own test CA (tests/sim/make_certs.sh). Stopped by pid."""

    def __init__(self, other_ca=False, auth="both", page_size=None, faults=(), data=None):
        import sys
        self.dir = tempfile.mkdtemp(prefix="mdmgw-sim-")
        rc = subprocess.run(["bash", os.path.join(SIM_DIR, "make_certs.sh"), self.dir],
                            capture_output=True, timeout=60)
        if rc.returncode != 0:
            raise AssertionError("make_certs.sh: %r" % rc.stderr)
        self.ca = os.path.join(self.dir, "ca.pem")  # what the gateway is told to trust
        self.own_ca = os.path.join(self.dir, "other-ca.pem" if other_ca else "ca.pem")
        prefix = "other-server" if other_ca else "server"
        cmd = [sys.executable, os.path.join(SIM_DIR, "sccm_sim.py"), "--port", "0",
               "--cert", os.path.join(self.dir, prefix + ".pem"),
               "--key", os.path.join(self.dir, prefix + "-key.pem"),
               "--data", data or os.path.join(SIM_DIR, "sccm_data.json"),
               "--user", SIM_USER, "--password", SIM_PASSWORD, "--auth", auth]
        if page_size:
            cmd += ["--page-size", str(page_size)]
        for f in faults:
            cmd += ["--fault", f]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.port = self._read_port()
        self.base = "https://127.0.0.1:%d/AdminService" % self.port

    def _read_port(self):
        import select
        line, limit = b"", time.monotonic() + 15
        while not line.endswith(b"\n"):
            left = limit - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise AssertionError("simulator not READY: %r" % line)
            if select.select([self.proc.stdout], [], [], left)[0]:
                c = os.read(self.proc.stdout.fileno(), 1)
                if not c:
                    raise AssertionError("simulator exited: %r" % self.proc.stderr.read())
                line += c
        if not line.startswith(b"READY "):
            raise AssertionError("simulator said %r" % line)
        return int(line.split()[1])

    def control(self, method, path):
        ctx = ssl.create_default_context(cafile=self.own_ca)
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            c.request(method, "/_sim/" + path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise AssertionError("sim %s %s: %d %r" % (method, path, r.status, body))
            return json.loads(body) if body else None
        finally:
            c.close()

    def fault(self, name, value):
        self.control("POST", "fault?name=%s&value=%s" % (name, value))

    def reset(self):
        self.control("POST", "reset")

    def counts(self):
        return self.control("GET", "counts")["counts"]

    def route_count(self, route):
        return self.counts().get("by_route", {}).get(route, 0)

    def adapter(self, name="sccm", auth="basic", password=None, **extra):
        """The gateway config entry for an sccm adapter pointed at this simulator."""
        a = {"name": name, "type": "sccm", "url": self.base, "ca_file": self.ca,
             "auth": auth, "user": SIM_USER, "password": password or SIM_PASSWORD}
        a.update(extra)
        return a

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


MDM_SIM_USER, MDM_SIM_PASSWORD = "ise-api", "Str0ng:pw 'mdm'"


class MdmSim:
    """The cloud MDM simulator (tests/sim/mdm_sim.py, the ISE MDM API) as a separate process on
    a free port, with certificates from tests/sim/make_certs.sh. cert is "server" (trusted by
    ca.pem), "other-server" (another CA) or "expired-server" (ca.pem, expired). Several
    simulators may share one certificate directory (certs_dir); the first one made owns it.
    Stopped by pid."""

    def __init__(self, cert="server", instance=None, query_max_size=None, role=None,
                 capitalised=False, noncompliant_only=False, faults=(), data=None,
                 action_log=None, certs_dir=None, report_ownership=False):
        import sys
        self.own_dir = certs_dir is None
        self.dir = certs_dir or tempfile.mkdtemp(prefix="mdmgw-mdmsim-")
        if self.own_dir:
            rc = subprocess.run(["bash", os.path.join(SIM_DIR, "make_certs.sh"), self.dir],
                                capture_output=True, timeout=60)
            if rc.returncode != 0:
                raise AssertionError("make_certs.sh: %r" % rc.stderr)
        self.ca = os.path.join(self.dir, "ca.pem")  # what a client is told to trust
        self.own_ca = os.path.join(self.dir, "other-ca.pem" if cert == "other-server"
                                   else "ca.pem")
        self.user, self.password = MDM_SIM_USER, MDM_SIM_PASSWORD
        self.instance = instance
        self.cert = cert
        cmd = [sys.executable, os.path.join(SIM_DIR, "mdm_sim.py"), "--port", "0",
               "--cert", os.path.join(self.dir, cert + ".pem"),
               "--key", os.path.join(self.dir, cert + "-key.pem"),
               "--data", data or os.path.join(SIM_DIR, "mdm_data.json"),
               "--user", self.user, "--password", self.password]
        if instance:
            cmd += ["--instance", instance]
        if query_max_size:
            cmd += ["--query-max-size", str(query_max_size)]
        if role:
            cmd += ["--role", role]
        if capitalised:
            cmd += ["--capitalised"]
        if noncompliant_only:
            cmd += ["--noncompliant-only"]
        if action_log:
            cmd += ["--action-log", action_log]
        if report_ownership:
            cmd += ["--report-ownership"]
        for f in faults:
            cmd += ["--fault", f]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.port = SccmSim._read_port(self)
        self.root = "https://127.0.0.1:%d" % self.port
        self.base = self.root + ("/" + instance if instance else "")

    def control(self, method, path):
        ctx = ssl.create_default_context(cafile=self.own_ca)
        if self.cert == "expired-server":  # the control routes are for tests: no expiry check
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", self.port, context=ctx, timeout=10)
        try:
            c.request(method, "/_sim/" + path)
            r = c.getresponse()
            body = r.read()
            if r.status != 200:
                raise AssertionError("sim %s %s: %d %r" % (method, path, r.status, body))
            return json.loads(body) if body else None
        finally:
            c.close()

    def fault(self, name, value):
        self.control("POST", "fault?name=%s&value=%s" % (name, value))

    def reset(self):
        self.control("POST", "reset")

    def counts(self):
        return self.control("GET", "counts")["counts"]

    def actions(self):
        return self.control("GET", "actions")["actions"]

    def stop(self):
        """SIGTERM, then the exit code (killed after 10 s: an AssertionError)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        for f in (self.proc.stdout, self.proc.stderr):
            if not f.closed:
                f.close()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        if rc is None:
            raise AssertionError("mdm simulator did not stop on SIGTERM")
        return rc
