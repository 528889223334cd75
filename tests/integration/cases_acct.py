"""Sessions end to end: FreeRADIUS's radclient sends RADIUS accounting (Start, Interim-Update,
Stop, Accounting-On) to the gateway's accounting listener, and the sessions admin API shows and
edits what it holds. Each case runs its own gateway with an accounting section.
"""
import json
import socket
import subprocess

from lib import Gateway

SECRET = "acct-secret-1"


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _gateway(env, clients=None):
    port = free_udp_port()
    gw = Gateway(env.binary, valgrind=env.valgrind, overrides={"accounting": {
        "listen": "127.0.0.1:%d" % port,
        "clients": clients or [{"address": "127.0.0.0/8", "secret": SECRET}],
        "session_ttl": "1h",
        "max_sessions": 1000}})
    gw.acct_port = port
    return gw


def radclient(gw, attrs, secret=SECRET, timeout=2):
    """Sends one Accounting-Request with radclient; True when an answer came back."""
    text = ", ".join("%s = %s" % kv for kv in attrs)
    p = subprocess.run(["radclient", "-x", "-r", "1", "-t", str(timeout * (4 if gw.valgrind
                                                                          else 1)),
                        "127.0.0.1:%d" % gw.acct_port, "acct", secret],
                       input=text.encode(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    got = p.returncode == 0 and "Received Accounting-Response" in out
    check(got or "No reply" in out, "radclient: %d %s" % (p.returncode, out))
    return got


def acct(status, mac, sid, nas_ip="10.20.30.40", nas_id="edge-sw1", user="alice", port=None):
    a = [("Acct-Status-Type", status), ("Calling-Station-Id", '"%s"' % mac),
         ("Acct-Session-Id", '"%s"' % sid), ("User-Name", '"%s"' % user),
         ("NAS-IP-Address", nas_ip), ("NAS-Identifier", '"%s"' % nas_id)]
    if port is not None:
        a.append(("NAS-Port", str(port)))
    return a


def js(r):
    check(r.header("Content-Type") == "application/json", "content type: %r %s"
          % (r.header("Content-Type"), r.text))
    return json.loads(r.body)


def sessions_of(gw, mac):
    r = gw.request("GET", "/api/v1/sessions/%s" % mac, user="boss")
    check(r.status == 200, "GET sessions/%s: %d %s" % (mac, r.status, r.text))
    return js(r)


def case_acct_radclient(env):
    gw = _gateway(env).start()
    try:
        check(radclient(gw, acct("Start", "00-26-B4-AA-10-01", "S-1", port=50101)),
              "Start not answered")
        s = sessions_of(gw, "0026B4AA1001")
        check(s["count"] == 1, "after Start: %r" % s)
        one = s["sessions"][0]
        check(one["mac"] == "0026B4AA1001" and one["nas_ip"] == "10.20.30.40" and
              one["nas_id"] == "edge-sw1" and one["acct_session_id"] == "S-1" and
              one["user_name"] == "alice" and one["nas_port"] == 50101 and
              one["updated_at"], "session: %r" % one)
        # A retransmitted Start is answered again and changes nothing.
        check(radclient(gw, acct("Start", "00-26-B4-AA-10-01", "S-1", port=50101)),
              "repeat not answered")
        check(sessions_of(gw, "0026b4aa1001")["count"] == 1, "repeat made a second session")
        # Interim-Update refreshes the session (the user name changed on re-auth).
        check(radclient(gw, acct("Interim-Update", "00:26:b4:aa:10:01", "S-1", user="alice2")),
              "Interim not answered")
        s = sessions_of(gw, "0026B4AA1001")
        check(s["count"] == 1 and s["sessions"][0]["user_name"] == "alice2", "interim: %r" % s)
        # A wireless session of the same MAC on another NAS.
        check(radclient(gw, acct("Start", "0026.b4aa.1001", "W-1", nas_ip="10.20.30.50",
                                 nas_id="wlc1")), "wireless Start not answered")
        check(sessions_of(gw, "0026B4AA1001")["count"] == 2, "two sessions expected")
        # Stop removes that one session.
        check(radclient(gw, acct("Stop", "00-26-B4-AA-10-01", "S-1")), "Stop not answered")
        s = sessions_of(gw, "0026B4AA1001")
        check(s["count"] == 1 and s["sessions"][0]["nas_id"] == "wlc1", "after Stop: %r" % s)
        # Accounting-On from the WLC (it rebooted): its sessions are gone, the switch's stay.
        check(radclient(gw, acct("Start", "00-26-B4-AA-10-02", "S-2")), "Start 2")
        check(radclient(gw, [("Acct-Status-Type", "Accounting-On"),
                             ("NAS-IP-Address", "10.20.30.50"),
                             ("NAS-Identifier", '"wlc1"')]), "Accounting-On not answered")
        check(sessions_of(gw, "0026B4AA1001")["count"] == 0, "Accounting-On left the session")
        check(sessions_of(gw, "0026B4AA1002")["count"] == 1, "Accounting-On cleared too much")
        # A wrong secret is dropped, not answered.
        check(not radclient(gw, acct("Start", "00-26-B4-AA-10-03", "S-3"), secret="wrong",
                            timeout=1), "a request with the wrong secret was answered")
        check(sessions_of(gw, "0026B4AA1003")["count"] == 0, "wrong secret stored a session")
        m = gw.metrics()
        check(m["mdmgw_acct_bad_authenticator_total"] >= 1, "bad auth not counted")
        check(m['mdmgw_acct_status_total{type="start"}'] == 4, "starts: %r" % m)
        check(m['mdmgw_acct_status_total{type="stop"}'] == 1 and
              m['mdmgw_acct_status_total{type="on_off"}'] == 1, "stop/on: %r" % m)
        check(m["mdmgw_sessions"] == 1, "sessions gauge: %r" % m["mdmgw_sessions"])
        check(m["mdmgw_acct_requests_total"] == m["mdmgw_acct_responses_total"] == 7,
              "requests/responses: %r" % m)
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %r" % rc)


def case_acct_unknown_client(env):
    gw = _gateway(env, clients=[{"address": "192.0.2.1", "secret": SECRET}]).start()
    try:
        check(not radclient(gw, acct("Start", "00-26-B4-AA-20-01", "S-1"), timeout=1),
              "a request from an unknown client was answered")
        check(sessions_of(gw, "0026B4AA2001")["count"] == 0, "unknown client stored a session")
        check(gw.metrics()["mdmgw_acct_unknown_client_total"] >= 1, "not counted")
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %r" % rc)


def case_acct_sessions_api(env):
    gw = _gateway(env).start()
    h = {"Content-Type": "application/json"}
    try:
        def put(mac, body, user="boss"):
            return gw.request("PUT", "/api/v1/sessions/%s" % mac, user=user, headers=h,
                              body=json.dumps(body).encode() if not isinstance(body, bytes)
                              else body)
        r = put("00:26:b4:aa:30:01", {"nas_ip": "10.1.1.1", "nas_id": "sw9",
                                      "acct_session_id": "A1", "user_name": "bob",
                                      "nas_port": 7})
        check(r.status == 200, "PUT: %d %s" % (r.status, r.text))
        o = js(r)
        check(o["mac"] == "0026B4AA3001" and o["nas_ip"] == "10.1.1.1" and o["nas_port"] == 7
              and o["user_name"] == "bob" and o["updated_at"], "PUT answer: %r" % o)
        r = put("0026B4AA3001", {"nas_ip": "10.1.1.2"})
        check(r.status == 200 and js(r)["nas_id"] is None, "second PUT: %s" % r.text)
        check(sessions_of(gw, "0026B4AA3001")["count"] == 2, "two sessions expected")
        # validation
        for body, word in (({"nas_id": "x"}, "nas_ip"), ({"nas_ip": "sw1"}, "nas_ip"),
                           ({"nas_ip": "10.1.1.1", "nas_port": -1}, "nas_port"),
                           ({"nas_ip": "10.1.1.1", "bogus": 1}, "bogus"),
                           ({"nas_ip": "10.1.1.1", "user_name": "x" * 200}, "user_name"),
                           (b"[1]", "JSON object")):
            r = put("0026B4AA3001", body)
            check(r.status == 400 and word in js(r)["error"],
                  "%r: %d %s" % (body, r.status, r.text))
        r = put("not-a-mac", {"nas_ip": "10.1.1.1"})
        check(r.status == 400 and "MAC" in js(r)["error"], "bad MAC: %d %s" % (r.status, r.text))
        # role admin only
        r = put("0026B4AA3001", {"nas_ip": "10.1.1.1"}, user="wiper")
        check(r.status == 403 and "error" in js(r), "wiper PUT: %d" % r.status)
        r = gw.request("GET", "/api/v1/sessions", user="demo")
        check(r.status == 403, "demo GET: %d" % r.status)
        # listing, with radclient's session in it too
        check(radclient(gw, acct("Start", "00-26-B4-AA-30-02", "R-1")), "Start")
        r = gw.request("GET", "/api/v1/sessions?limit=2", user="boss")
        o = js(r)
        check(r.status == 200 and o["count"] == 3 and len(o["sessions"]) == 2,
              "list: %d %s" % (r.status, r.text))
        r = gw.request("GET", "/api/v1/sessions?limit=0", user="boss")
        check(r.status == 400, "limit=0: %d" % r.status)
        r = gw.request("POST", "/api/v1/sessions/0026B4AA3001", user="boss")
        check(r.status == 405, "POST: %d" % r.status)
        # DELETE drops every session of the MAC; again is 404
        r = gw.request("DELETE", "/api/v1/sessions/00-26-B4-AA-30-01", user="boss")
        check(r.status == 200 and js(r) == {"mac": "0026B4AA3001", "removed": 2},
              "DELETE: %d %s" % (r.status, r.text))
        r = gw.request("DELETE", "/api/v1/sessions/0026B4AA3001", user="boss")
        check(r.status == 404 and "error" in js(r), "DELETE again: %d" % r.status)
        check(sessions_of(gw, "0026B4AA3001")["count"] == 0, "DELETE left sessions")
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %r" % rc)
