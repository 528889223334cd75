"""Destructive actions end to end on the demo inventory: the admin JSON API, the ISE action API,
idempotency, policy, the journal across a restart (unknown actions, a torn last line), blocking,
and 50 concurrent identical requests. Each case runs its own gateway: actions change what the
inventory reports, which the shared demo gateway must not see.
"""
import hashlib
import json
import os
import threading
import time
import xml.etree.ElementTree as ET

from lib import ROOT, Gateway

DEMO_INV = os.path.join(ROOT, "conf", "demo-inventory.json")
NO_OWNER_MAC = "0026B4AA0001"   # the extra device below: registered, ownership not reported


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _inventory(dirpath):
    """The demo inventory plus one registered device whose ownership is not reported."""
    inv = json.load(open(DEMO_INV))
    inv["devices"].append({"id": "inv-noowner", "macs": [NO_OWNER_MAC], "registered": True,
                           "compliant": True, "manufacturer": "Acme"})
    path = os.path.join(dirpath, "inventory-actions.json")
    with open(path, "w") as f:
        json.dump(inv, f)
    return path


def _gateway(env, **kw):
    gw = Gateway(env.binary, valgrind=env.valgrind, **kw)
    inv = _inventory(gw.dir)
    gw.config["adapters"] = [{"name": "inventory", "type": "inventory", "file": inv}]
    with open(gw.config_path, "w") as f:
        json.dump(gw.config, f, indent=1)
    return gw


def act(gw, device, action, key=None, user="wiper", body=None):
    h = {"Content-Type": "application/json"}
    if key is not None:
        h["Idempotency-Key"] = key
    b = body if body is not None else json.dumps({"action": action}).encode()
    return gw.request("POST", "/api/v1/devices/%s/actions" % device, user=user, body=b,
                      headers=h)


def js(r):
    check(r.header("Content-Type") == "application/json", "content type %r: %s"
          % (r.header("Content-Type"), r.text))
    return json.loads(r.body)


def lookup(gw, mac):
    r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=macaddress"
                   "&value=%s&filter=all" % mac, user="nac")
    check(r.status == 200, "lookup %s: %d %s" % (mac, r.status, r.text))
    devs = ET.fromstring(r.body).findall("deviceList/device")
    check(len(devs) == 1, "lookup %s: %d devices" % (mac, len(devs)))
    return devs[0]


def listing(gw, compliant):
    r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=compliance"
                   "&value=%s&filter=all" % ("true" if compliant else "false"), user="nac")
    check(r.status == 200, "listing: %d" % r.status)
    return {d.findtext("macaddress"): d for d in ET.fromstring(r.body).findall(
        "deviceList/device")}


def ise_action(gw, target, mac):
    body = ("<ise_api><identifier><macaddress>%s</macaddress></identifier></ise_api>"
            % mac).encode()
    r = gw.request("POST", target, user="wiper", body=body)
    check(r.status == 200 and r.header("Content-Type") == "application/xml; charset=utf-8",
          "ISE action %s: %d %s" % (target, r.status, r.text))
    x = ET.fromstring(r.body)
    return (x.findtext("deviceList/device/result/action_status"),
            x.findtext("deviceList/device/result/failure_reason") or "")


def vendor_calls(gw, vendor_id):
    """How many times the inventory accepted an action on vendor_id (its own log line)."""
    return len([
        ln for ln in gw.log().splitlines()
        if "inventory inventory: action " in ln and " on %s accepted" % vendor_id in ln])


def journal_lines(gw):
    path = os.path.join(gw.dir, "state", "actions.jsonl")
    out = []
    for ln in open(path, "rb").read().decode().splitlines():
        try:
            out.append(json.loads(ln))
        except ValueError:
            pass
    return out


def case_actions_admin_api(env):
    gw = _gateway(env).start()
    try:
        r = act(gw, "00:26:b4:24:fe:b4", "corporate_wipe", key="wipe-1")
        a = js(r)
        check(r.status == 200 and a["state"] == "sent", "wipe: %d %s" % (r.status, r.text))
        check(a["device"] == "0026B424FEB4" and a["mdm"] == "inventory" and
              a["vendor_id"] == "inv-0001" and a["user"] == "wiper" and
              a["source"] == "127.0.0.1" and a["action"] == "corporate_wipe", r.text)
        check(len(a["action_id"]) == 32 and a["completed_at"] and a["resolved_by"] is None,
              r.text)
        # The NAC's next lookup sees the MDM's new state (the cache was purged).
        check(lookup(gw, "0026B424FEB4").findtext("attributes/register_status") == "false",
              "wiped device still registered")
        r2 = act(gw, "0026B424FEB4", "corporate_wipe", key="wipe-1")
        check(r2.status == 200 and js(r2)["action_id"] == a["action_id"], "repeat: " + r2.text)
        check(vendor_calls(gw, "inv-0001") == 1, "the repeat reached the MDM")
        r = act(gw, "0026B424FEB4", "pin_lock", key="wipe-1")
        check(r.status == 422 and js(r)["action_id"] == a["action_id"] and
              "error" in js(r), "other payload: %d %s" % (r.status, r.text))
        r = act(gw, "64:31:50:10:DA:60", "corporate_wipe", key="wipe-1")
        check(r.status == 422, "other device, same key: %d" % r.status)
        r = act(gw, "0026B424FEB4", "corporate_wipe")
        check(r.status == 400 and "Idempotency-Key" in js(r)["error"], "no key: " + r.text)
        check(act(gw, "0026B424FEB4", "pin_lock", key="has space").status == 400, "bad key")
        check(act(gw, "0026B424FEB4", None, key="k-body",
                  body=b'{"action":"pin_lock","x":1}').status == 400, "unknown key")
        check(act(gw, "0026B424FEB4", None, key="k-body", body=b"not json").status == 400,
              "not json")
        check(act(gw, "0026B424FEB4", "format_c", key="k-body").status == 400, "bad action")
        r = act(gw, "0026B424FEB4", "pin_lock", key="k-query", user="demo")
        check(r.status == 403 and "error" in js(r), "query role: %d %s" % (r.status, r.text))
        check(vendor_calls(gw, "inv-0001") == 1, "a refused request reached the MDM")

        # Policy: full wipe of a personal and of an unknown-ownership device; nobody's device.
        for dev, word in (("3C:28:6D:11:22:33", "personally owned"),
                          (NO_OWNER_MAC, "ownership is unknown")):
            r = act(gw, dev, "full_wipe", key="fw-" + dev)
            a2 = js(r)
            check(r.status == 403 and a2["state"] == "refused" and word in a2["detail"],
                  "full wipe %s: %d %s" % (dev, r.status, r.text))
        check(vendor_calls(gw, "inv-0004") == 0 and vendor_calls(gw, "inv-noowner") == 0,
              "a refused full wipe reached the MDM")
        r = act(gw, NO_OWNER_MAC, "pin_lock", key="pl-noowner")
        check(r.status == 200 and js(r)["state"] == "sent", "pin lock is not a full wipe")
        check(lookup(gw, NO_OWNER_MAC).findtext("attributes/pin_lock_on") == "true",
              "pin lock not shown")
        r = act(gw, "0026B4FFFF02", "pin_lock", key="nobody")
        check(r.status == 403 and js(r)["detail"] == "no MDM manages this device", r.text)

        # Reading the journal through the API.
        r = gw.request("GET", "/api/v1/actions/" + a["action_id"], user="wiper")
        check(r.status == 200 and js(r)["action_id"] == a["action_id"], r.text)
        check(gw.request("GET", "/api/v1/actions/" + "0" * 32, user="boss").status == 404, "404")
        check(gw.request("GET", "/api/v1/actions", user="demo").status == 403, "query reads")
        r = gw.request("GET", "/api/v1/actions?device=00-26-b4-24-fe-b4", user="boss")
        acts = js(r)["actions"]
        check(r.status == 200 and [x["action_id"] for x in acts] == [a["action_id"]],
              "device filter: " + r.text)
        acts = js(gw.request("GET", "/api/v1/actions?state=refused", user="boss"))["actions"]
        check(len(acts) == 3 and all(x["state"] == "refused" for x in acts),
              "state filter: %r" % acts)
        acts = js(gw.request("GET", "/api/v1/actions", user="boss"))["actions"]
        check(len(acts) == 5 and acts[0]["action_id"] == a["action_id"], "all, oldest first")
        check(gw.request("GET", "/api/v1/actions?state=bogus", user="boss").status == 400,
              "bad state")
        r = gw.request("POST", "/api/v1/actions/%s/resolve" % a["action_id"], user="boss",
                       body=b'{"result":"sent"}')
        check(r.status == 409, "resolving a final action: %d" % r.status)
        lines = journal_lines(gw)
        check(sum(1 for ln in lines if ln["t"] == "intent") == 2 and
              sum(1 for ln in lines if ln["t"] == "outcome") == 2 and
              sum(1 for ln in lines if ln["t"] == "refused") == 3, "journal: %r" % lines)
        mode = os.stat(os.path.join(gw.dir, "state", "actions.jsonl")).st_mode & 0o777
        check(mode == 0o600, "journal mode %o" % mode)
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)


def case_actions_ise_api(env):
    gw = _gateway(env).start()
    try:
        forms = (("/ciscoise/mdmapi/v3/action/?actionType=corporate_wipe", "F018983A4B5C",
                  "inv-0003"),
                 ("/ciscoise/mdmapi/v3/action/actionType=pin_lock", "A483E7445566", "inv-0005"),
                 ("/ciscoise/mdmapi/v2/action?actionType=full_wipe", "10:DD:B1:CA:FE:01",
                  "inv-0022"))
        for target, mac, vid in forms:
            status, reason = ise_action(gw, target, mac)
            check(status == "true" and reason == "", "%s %s: %s %s" % (target, mac, status,
                                                                       reason))
            check(vendor_calls(gw, vid) == 1, "%s: not one vendor call" % vid)
        # The same account asking the same again within the window: the first result, no call.
        status, _ = ise_action(gw, forms[0][0], forms[0][1])
        check(status == "true" and vendor_calls(gw, "inv-0003") == 1, "ISE repeat")
        status, reason = ise_action(gw, "/ciscoise/mdmapi/v3/action/?actionType=full_wipe",
                                    "3C286D112233")
        check(status == "false" and "personally owned" in reason, "ISE personal: " + reason)
        status, reason = ise_action(gw, "/ciscoise/mdmapi/v3/action/?actionType=pin_lock",
                                    "0026B4FFFF03")
        check(status == "false" and reason == "no MDM manages this device", reason)
        r = gw.request("POST", "/ciscoise/mdmapi/v3/action/?actionType=pin_lock", user="nac",
                       body=b"<ise_api><identifier><macaddress>A483E7445566</macaddress>"
                            b"</identifier></ise_api>")
        check(r.status == 403, "query account on the ISE action API: %d" % r.status)
        acts = json.loads(gw.request("GET", "/api/v1/actions?state=sent", user="boss").body)
        check(len(acts["actions"]) == 3 and all(a["user"] == "wiper" for a in acts["actions"]),
              "journal through the admin API: %r" % acts)
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)


def case_actions_block(env):
    gw = _gateway(env).start()
    try:
        mac = "9CB6D0DEAD01"  # compliant in the demo
        d = lookup(gw, mac)
        check(d.findtext("attributes/compliance/status") == "true", "compliant before")
        check(mac not in listing(gw, False) and mac in listing(gw, True), "listings before")
        r = gw.request("PUT", "/api/v1/devices/9c:b6:d0:de:ad:01/block", user="wiper",
                       body=b"{}")
        check(r.status == 403, "block needs admin: %d" % r.status)
        r = gw.request("PUT", "/api/v1/devices/9c:b6:d0:de:ad:01/block", user="boss",
                       body=b'{"note": "stolen"}')
        b = js(r)
        check(r.status == 200 and b["device"] == mac and b["blocked"] is True and
              b["by"] == "boss" and b["note"] == "stolen" and b["at"], r.text)
        d = lookup(gw, mac)
        check(d.findtext("attributes/compliance/status") == "false" and
              d.findtext("attributes/compliance/failure_reason") == "blocked by administrator",
              "blocked device answered: " + ET.tostring(d).decode())
        # By its GUID too, and in the listings.
        r = gw.request("GET", "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=guid&value="
                       "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d&filter=all", user="nac")
        check(b"blocked by administrator" in r.body, "by GUID: " + r.text)
        nonc = listing(gw, False)
        check(mac in nonc and nonc[mac].findtext("attributes/compliance/failure_reason") ==
              "blocked by administrator", "compliance=false listing")
        check(mac not in listing(gw, True), "compliance=true listing still has it")
        r = gw.request("GET", "/api/v1/blocks", user="boss")
        check(r.status == 200 and [x["device"] for x in js(r)["blocks"]] == [mac], r.text)
        r = gw.request("PUT", "/api/v1/devices/9CB6D0DEAD01/block", user="boss",
                       body=b'{"note": 1}')
        check(r.status == 400, "bad note: %d" % r.status)
        saved = json.load(open(os.path.join(gw.dir, "state", "blocks.json")))
        check([x["device"] for x in saved["blocks"]] == [mac], "persisted: %r" % saved)
        # Survives a restart.
        check(gw.stop() == 0, "exit code")
        gw.start()
        check(lookup(gw, mac).findtext("attributes/compliance/status") == "false",
              "block lost at restart")
        r = gw.request("DELETE", "/api/v1/devices/9CB6D0DEAD01/block", user="boss")
        check(r.status == 200 and js(r) == {"device": mac, "blocked": False}, r.text)
        check(lookup(gw, mac).findtext("attributes/compliance/status") == "true", "unblocked")
        check(mac in listing(gw, True), "back in the compliant listing")
        r = gw.request("DELETE", "/api/v1/devices/9CB6D0DEAD01/block", user="boss")
        check(r.status == 404, "unblock twice: %d" % r.status)
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)


def case_actions_corrupt_block_list_refuses_start(env):
    gw = _gateway(env)
    try:
        os.makedirs(os.path.join(gw.dir, "state"), exist_ok=True)
        with open(os.path.join(gw.dir, "state", "blocks.json"), "w") as f:
            f.write('{"blocks": [{"device": "9CB6D0DEAD01", "by": "bo')
        gw.start(wait=False)
        rc = gw.proc.wait(240 if env.valgrind else 30)
        check(rc != 0 and "block list cannot be loaded" in gw.log() and "blocks.json" in
              gw.log(), "torn block list: rc %s\n%s" % (rc, gw.log()[-2000:]))
        gw.logf.close()
        gw.proc = None
    finally:
        gw.cleanup()


def _hash(*parts):
    return hashlib.sha256("".join(p + "\n" for p in parts).encode()).hexdigest()


def case_actions_unknown_after_restart_and_torn_line(env):
    gw = _gateway(env)
    try:
        state = os.path.join(gw.dir, "state")
        os.makedirs(state, mode=0o700, exist_ok=True)
        intent = {"t": "intent", "id": "a" * 32, "at": int(time.time() * 1000),
                  "user": "wiper", "addr": "127.0.0.1", "action": "corporate_wipe",
                  "device": "0026B424FEB4", "mdm": "inventory", "vendor_id": "inv-0001",
                  "key": "crashed-1", "key_hash": _hash("corporate_wipe", "0026B424FEB4")}
        with open(os.path.join(state, "actions.jsonl"), "w") as f:
            f.write(json.dumps(intent) + "\n")
            f.write('{"t": "outcome", "id": "' + "a" * 16)  # torn: the crash came mid-write
        os.chmod(os.path.join(state, "actions.jsonl"), 0o600)
        gw.start()
        check("unknown" in gw.log(), "unknown action not logged")
        r = gw.request("GET", "/api/v1/actions?state=unknown", user="boss")
        acts = json.loads(r.body)["actions"]
        check(r.status == 200 and [a["action_id"] for a in acts] == ["a" * 32], r.text)
        r = act(gw, "0026B424FEB4", "corporate_wipe", key="crashed-1")
        check(r.status == 409 and js(r)["state"] == "unknown", "retry: %d %s" % (r.status,
                                                                                r.text))
        r = act(gw, "00:26:B4:24:FE:B4", "pin_lock", key="other-1")
        check(r.status == 409 and js(r)["action_id"] == "a" * 32, "device held: " + r.text)
        check(vendor_calls(gw, "inv-0001") == 0, "an unknown action was resent")
        r = gw.request("POST", "/api/v1/actions/%s/resolve" % ("a" * 32), user="wiper",
                       body=b'{"result": "not_sent"}')
        check(r.status == 403, "resolve needs admin: %d" % r.status)
        r = gw.request("POST", "/api/v1/actions/%s/resolve" % ("a" * 32), user="boss",
                       body=b'{"result": "maybe"}')
        check(r.status == 400, "bad result: %d" % r.status)
        r = gw.request("POST", "/api/v1/actions/%s/resolve" % ("a" * 32), user="boss",
                       body=b'{"result": "not_sent", "note": "checked the console"}')
        a = js(r)
        check(r.status == 200 and a["state"] == "resolved_not_sent" and
              a["resolved_by"] == "boss" and a["note"] == "checked the console", r.text)
        check(gw.request("POST", "/api/v1/actions/%s/resolve" % ("f" * 32), user="boss",
                         body=b'{"result": "sent"}').status == 404, "unknown id")
        r = act(gw, "0026B424FEB4", "pin_lock", key="other-2")
        check(r.status == 200 and js(r)["state"] == "sent", "device free again: " + r.text)
        check(vendor_calls(gw, "inv-0001") == 1, "one vendor call")
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)


def case_actions_50_concurrent_same_key(env):
    # 50 TLS handshakes at once on two threads (slow under valgrind) must not meet the header
    # deadline: this case is about the journal, not about slow clients.
    gw = _gateway(env, overrides={"listen": {"header_timeout": "60s",
                                             "body_timeout": "60s"}}).start()
    try:
        results = []
        lock = threading.Lock()
        go = threading.Event()

        def one():
            go.wait()
            r = act(gw, "D4:6D:6D:AA:BB:CC", "corporate_wipe", key="storm-1")
            with lock:
                results.append((r.status, json.loads(r.body)))

        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(120)
        check(len(results) == 50, "answers: %d" % len(results))
        ids = {b.get("action_id") for _, b in results}
        check(all(s in (200, 409) for s, _ in results) and len(ids) == 1,
              "statuses %r ids %r" % (sorted({s for s, _ in results}), ids))
        check(any(s == 200 for s, _ in results), "none sent")
        check(vendor_calls(gw, "inv-0007") == 1, "vendor calls: %d" %
              vendor_calls(gw, "inv-0007"))
        intents = [ln for ln in journal_lines(gw) if ln["t"] == "intent"]
        check(len(intents) == 1, "journal intents: %d" % len(intents))
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)


def case_actions_two_mdms_ambiguous(env):
    """The same device reported registered by two MDMs: which one to wipe cannot be guessed."""
    gw = _gateway(env)
    inv = gw.config["adapters"][0]["file"]
    gw.config["adapters"] = [{"name": "inventory", "type": "inventory", "file": inv},
                             {"name": "inventory2", "type": "inventory", "file": DEMO_INV}]
    with open(gw.config_path, "w") as f:
        json.dump(gw.config, f, indent=1)
    gw.start()
    try:
        r = act(gw, "0026B424FEB4", "corporate_wipe", key="amb-1")
        a = js(r)
        check(r.status == 403 and a["state"] == "refused" and
              a["detail"] == "managed by several MDMs (inventory, inventory2): ambiguous" and
              a["mdm"] == "", "two MDMs: %d %s" % (r.status, r.text))
        status, reason = ise_action(gw, "/ciscoise/mdmapi/v3/action/?actionType=pin_lock",
                                    "0026B424FEB4")
        check(status == "false" and "ambiguous" in reason, "ISE: " + reason)
        # Only in the extra inventory: one MDM, so it goes there.
        r = act(gw, NO_OWNER_MAC, "pin_lock", key="amb-2")
        check(r.status == 200 and js(r)["mdm"] == "inventory", r.text)
        check("action corporate_wipe on" not in gw.log() and
              "action pin_lock on inv-0001" not in gw.log(), "an ambiguous action was sent")
    finally:
        rc = gw.stop()
        gw.cleanup()
    check(rc == 0, "exit code %s" % rc)
