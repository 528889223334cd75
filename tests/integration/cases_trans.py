"""The transitions engine end to end: held CoA events survive a restart (state_dir/held.jsonl),
POST /api/v1/reconciler/release lets them go once (then 409), a torn devices.jsonl never stops
the start, and an admin block is a CoA event of its own.
"""
import json
import os
import time

from cases_actions import _gateway, check, js


def _wait_log(gw, text, secs=10):
    limit = time.monotonic() + secs
    while time.monotonic() < limit:
        if text in gw.log():
            return True
        time.sleep(0.1)
    return False


def case_trans_release_and_block(env):
    gw = _gateway(env)
    try:
        state = os.path.join(gw.dir, "state")
        os.makedirs(state, exist_ok=True)
        with open(os.path.join(state, "held.jsonl"), "w") as f:
            f.write('{"format":"mdmgw-trans-held","version":1,"since":1700000000000}\n')
            for mac in ("0026B4000001", "0026B4000002"):
                f.write(json.dumps({"id": mac + "@3", "mac": mac, "guid": "", "from": "compliant",
                                    "to": "noncompliant", "reason": "compliance lost in x",
                                    "kind": "reauth", "at": 1700000000000, "epoch": 0}) + "\n")
        with open(os.path.join(state, "devices.jsonl"), "w") as f:
            f.write('{"format":"mdmgw-trans","version":1,"gen":3,"saved":1}\n{"key":"0026B4')
        gw.start()
        check("2 CoA events held" in gw.log() and "1 lines dropped" in gw.log(),
              "held batch and torn line at start:\n" + gw.log()[-3000:])
        r = gw.request("POST", "/api/v1/reconciler/release", user="wiper", body=b"")
        check(r.status == 403, "release needs admin: %d" % r.status)
        r = gw.request("POST", "/api/v1/reconciler/release", user="boss", body=b"")
        check(r.status == 200 and js(r) == {"released": 2}, "release: %d %s" % (r.status, r.text))
        check(_wait_log(gw, "transition 0026B4000001@3") and "transition 0026B4000002@3" in gw.log(),
              "released events emitted:\n" + gw.log()[-3000:])
        check(not os.path.exists(os.path.join(state, "held.jsonl")), "held file removed")
        r = gw.request("POST", "/api/v1/reconciler/release", user="boss", body=b"")
        check(r.status == 409 and js(r) == {"error": "nothing held"}, "second release: " + r.text)
        r = gw.request("GET", "/api/v1/reconciler/release", user="boss")
        check(r.status == 405, "GET release: %d" % r.status)
        r = gw.request("PUT", "/api/v1/devices/9c:b6:d0:de:ad:01/block", user="boss", body=b"{}")
        check(r.status == 200, "block: " + r.text)
        check(_wait_log(gw, "transition 9CB6D0DEAD01@block:"), "block event:\n" + gw.log()[-2000:])
        r = gw.request("DELETE", "/api/v1/devices/9c:b6:d0:de:ad:01/block", user="boss")
        check(r.status == 200 and _wait_log(gw, "-> unblocked"), "unblock event")
    finally:
        gw.stop()
