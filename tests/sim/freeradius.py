#!/usr/bin/env python3
"""A real FreeRADIUS 3.2 server as the RFC 5176 peer (the DAS a switch would be) for tests.

Writes a minimal config directory (radiusd.conf, an empty dictionary, one client, the `detail`
and `always` modules, one virtual server with `listen { type = coa }`) on a free loopback UDP
port and runs `freeradius -f -X -d DIR` in the foreground with its own log, run and pid paths,
so any system instance is ignored. Stopped by pid.

What the server does with a CoA-Request or Disconnect-Request (verified with the client's
secret; a request failing verification is dropped, as a switch would):
  - writes it to DIR/detail (every attribute, including Message-Authenticator);
  - when its Calling-Station-Id is one of the --nak-mac values: NAK (CoA-NAK / Disconnect-NAK)
    with Error-Cause = 503 (Session-Context-Not-Found), or the cause given as MAC=CAUSE;
  - otherwise: ACK (CoA-ACK / Disconnect-ACK);
  - replies carry a Message-Authenticator unless --no-ma.

As a module:
    from freeradius import FreeRadius
    fr = FreeRadius(secret="s3cret", nak_macs=["AA-BB-CC-DD-EE-01"])
    fr.start()              # fr.port, fr.detail_path, fr.log_path
    ... fr.requests() -> [{"Packet-Type"?: ..., "Calling-Station-Id": "...", ...}, ...]
    fr.stop()

As a command line (the C unit tests spawn it):
    python3 tests/sim/freeradius.py --secret S [--nak-mac MAC ...] [--no-ma] [--dir DIR]
prints "READY <port> <dir>" once FreeRADIUS listens, runs until SIGTERM/SIGINT, then stops
FreeRADIUS by pid and exits 0. DIR (default: a fresh temporary directory, removed at exit
unless --keep) holds detail, freeradius.log and the config.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

FREERADIUS = os.environ.get("FREERADIUS", "/usr/sbin/freeradius")
DICTDIR = "/usr/share/freeradius"
LIBDIR = "/usr/lib/freeradius"
READY_LINE = "Ready to process requests"

RADIUSD_CONF = """\
# Written by tests/sim/freeradius.py: a CoA peer for tests, nothing else.
prefix = /usr
exec_prefix = /usr
sysconfdir = {dir}
localstatedir = {dir}
sbindir = /usr/sbin
logdir = {dir}
raddbdir = {dir}
radacctdir = {dir}
name = radiusd
confdir = {dir}
modconfdir = {dir}
run_dir = {dir}
db_dir = {dir}
libdir = {libdir}
dictdir = {dictdir}
pidfile = {dir}/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 16384
hostname_lookups = no

log {{
	destination = files
	file = {dir}/radius.log
	colourise = no
	auth = no
}}

security {{
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}}

proxy_requests = no

client gateway {{
	ipaddr = 127.0.0.1
	secret = "{secret}"
	require_message_authenticator = no
}}

client gateway6 {{
	ipaddr = ::1
	secret = "{secret}"
	require_message_authenticator = no
}}

thread pool {{
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
}}

modules {{
	detail {{
		filename = {dir}/detail
		escape_filenames = no
		permissions = 0600
		header = "%t"
	}}
	always ok {{
		rcode = ok
	}}
	always reject {{
		rcode = reject
	}}
}}

server coa {{
	listen {{
		type = coa
		ipaddr = 127.0.0.1
		port = {port}
	}}
	recv-coa {{
		detail
{nak}
{ma}
		ok
	}}
	send-coa {{
		ok
	}}
}}
"""

NAK_BLOCK = """\
		if (&Calling-Station-Id == "{mac}") {{
			update reply {{
				&Error-Cause := {cause}
{ma}
			}}
			reject
		}}"""

MA_LINE = "\t\t\t\t&Message-Authenticator := 0x00"


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mac_dashed(mac):
    """'aabbccddeeff' / 'AA:BB:..' -> 'AA-BB-CC-DD-EE-FF' (the form the gateway sends)."""
    h = "".join(c for c in mac if c.isalnum()).upper()
    if len(h) != 12:
        raise ValueError("not a MAC: %r" % mac)
    return "-".join(h[i:i + 2] for i in range(0, 12, 2))


class FreeRadius:
    def __init__(self, secret, nak_macs=(), reply_ma=True, workdir=None, keep=False):
        self.secret = secret
        # "MAC" or "MAC=CAUSE" (a number): (dashed MAC, Error-Cause value)
        self.nak_macs = []
        for m in nak_macs:
            mac, _, cause = m.partition("=")
            self.nak_macs.append((mac_dashed(mac), int(cause or 503)))
        self.reply_ma = reply_ma
        self.own_dir = workdir is None
        self.dir = workdir or tempfile.mkdtemp(prefix="freeradius-")
        self.keep = keep
        self.port = 0
        self.proc = None
        self.detail_path = os.path.join(self.dir, "detail")
        self.log_path = os.path.join(self.dir, "freeradius.log")

    def _write_config(self):
        ma = MA_LINE if self.reply_ma else ""
        nak = "\n".join(NAK_BLOCK.format(mac=m, cause=c, ma=ma) for m, c in self.nak_macs)
        top_ma = ""
        if self.reply_ma:
            top_ma = "\t\tupdate reply {\n\t\t\t&Message-Authenticator := 0x00\n\t\t}"
        if '"' in self.secret or "\\" in self.secret or "\n" in self.secret:
            raise ValueError("the harness takes secrets without quotes or backslashes")
        conf = RADIUSD_CONF.format(dir=self.dir, libdir=LIBDIR, dictdir=DICTDIR,
                                   secret=self.secret, port=self.port, nak=nak, ma=top_ma)
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "radiusd.conf"), "w") as f:
            f.write(conf)
        # The local dictionary FreeRADIUS reads after its own; nothing to add.
        with open(os.path.join(self.dir, "dictionary"), "w") as f:
            f.write("# empty: the stock dictionaries are enough\n")

    def start(self, timeout=15.0):
        """Starts FreeRADIUS on a free port; retries a port another process took meanwhile."""
        for _ in range(5):
            self.port = free_udp_port()
            self._write_config()
            if self._spawn(timeout):
                return self
        raise RuntimeError("freeradius did not start; see %s" % self.log_path)

    def _spawn(self, timeout):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([FREERADIUS, "-f", "-X", "-d", self.dir, "-n", "radiusd"],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.proc = None
                return False
            with open(self.log_path, "rb") as f:
                if READY_LINE.encode() in f.read():
                    return True
            time.sleep(0.05)
        self.stop()
        return False

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def cleanup(self):
        self.stop()
        if self.own_dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def requests(self):
        """The detail file as a list of {attribute: value (str), or a list when repeated}."""
        try:
            with open(self.detail_path, "r", errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            return []
        out, cur = [], None
        for line in text.splitlines():
            if not line.strip():
                if cur is not None:
                    out.append(cur)
                cur = None
                continue
            if not line.startswith(("\t", " ")):
                cur = {}
                continue
            if cur is None or "=" not in line:
                continue
            k, v = line.strip().split("=", 1)
            k, v = k.strip(), v.strip()
            if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
                v = v[1:-1]
            if k in cur:
                cur[k] = cur[k] if isinstance(cur[k], list) else [cur[k]]
                cur[k].append(v)
            else:
                cur[k] = v
        if cur is not None:
            out.append(cur)
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--secret", required=True)
    ap.add_argument("--nak-mac", action="append", default=[],
                    help="Calling-Station-Id answered with NAK, Error-Cause 503 or MAC=CAUSE "
                    "(repeatable)")
    ap.add_argument("--no-ma", action="store_true",
                    help="replies carry no Message-Authenticator")
    ap.add_argument("--dir", help="config/log/detail directory (default: a temporary one)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    fr = FreeRadius(a.secret, nak_macs=a.nak_mac, reply_ma=not a.no_ma, workdir=a.dir,
                    keep=a.keep)
    stopping = []

    def on_signal(signum, frame):
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        fr.start()
    except Exception as e:
        sys.stderr.write("freeradius.py: %s\n%s" % (e, fr.log()[-4000:]))
        fr.cleanup()
        return 1
    print("READY %d %s" % (fr.port, fr.dir), flush=True)
    while not stopping and fr.proc is not None and fr.proc.poll() is None:
        time.sleep(0.1)
    died = fr.proc is None or fr.proc.poll() is not None
    fr.cleanup()
    if died and not stopping:
        sys.stderr.write("freeradius.py: freeradius exited on its own\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
