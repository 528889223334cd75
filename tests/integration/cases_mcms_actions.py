"""Destructive actions through the cloud MDM adapter, end to end: the gateway in front of the
cloud MDM simulator (tests/sim/mdm_sim.py), whose own action log says what reached the MDM.

- exactly once: admin API and ISE API wipes reach the MDM once; repeats, 50 concurrent
  identical requests, key reuse (422), a query account (403) and the ownership policy (personal
  and unreported ownership, full wipe) send nothing more;
- crash: the gateway is killed (SIGKILL) while the MDM holds a wipe open; after the restart the
  action is `unknown`, the journal has its intent and no outcome, a client retry with the same
  key sends nothing, and `resolve` frees the device;
- routing: a device only SCCM manages answers "unsupported" (SCCM takes no commands), a device
  two MDMs report is refused as ambiguous.
"""
import json
import os
import signal
import threading
import time

from lib import ROOT, Gateway, MdmSim, SccmSim
from cases_actions import act, ise_action, js, journal_lines

CORPORATE = "F018983A4B5C"  # mdm_data.json: compliant corporate phone
CORPORATE_2 = "A483E7445566"  # non-compliant corporate phone
PERSONAL = "5CF938A1B2C3"  # personal phone
NO_OWNER = "0026B424FEB4"  # ownership "unknown": the simulator reports none
NO_GUID = "10DDB1CAFE01"  # corporate iMac without a GUID
DEMO_INV = os.path.join(ROOT, "conf", "demo-inventory.json")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _sim_adapter(sim, name="cloud"):
    ad = {"name": name, "type": "mcms", "url": sim.root, "ca_file": sim.ca, "user": sim.user,
          "password": sim.password, "breaker_failures": 0}
    if sim.instance:
        ad["instance"] = sim.instance
    return ad


def _gateway(env, adapters):
    over = {"adapters": adapters,
            "api": {"lookup_timeout": "5s" if env.valgrind else "3s"},
            "listen": {"header_timeout": "60s", "body_timeout": "60s"}}
    return Gateway(env.binary, valgrind=env.valgrind, overrides=over, name="mcms-actions")


def _sent(sim, mac, action=None):
    return [a for a in sim.actions()
            if a["macaddress"] == mac and (action is None or a["action"] == action)]


def _wait(cond, seconds, what):
    limit = time.monotonic() + seconds
    while time.monotonic() < limit:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def _finish(gw, *sims):
    errs = []
    if gw is not None:
        rc = gw.stop() if gw.proc else 0
        if rc not in (0, None):
            errs.append("gateway exit %s:\n%s" % (rc, gw.log()[-3000:]))
        gw.cleanup()
    for s in sims:
        if s is not None:
            try:
                s.stop()
            except AssertionError as e:
                errs.append(str(e))
    check(not errs, "; ".join(errs))


def case_mcms_actions_exactly_once(env):
    sim = MdmSim(report_ownership=True)
    gw = None
    try:
        gw = _gateway(env, [_sim_adapter(sim)]).start()
        # admin API: sent once; the repeat answers the first result and sends nothing
        r = act(gw, "f0:18:98:3a:4b:5c", "corporate_wipe", key="once-1")
        first = js(r)
        check(r.status == 200 and first["state"] == "sent" and first["mdm"] == "cloud",
              "admin wipe: %d %s" % (r.status, r.text))
        r = act(gw, CORPORATE, "corporate_wipe", key="once-1")
        check(r.status == 200 and js(r)["action_id"] == first["action_id"], "repeat: " + r.text)
        check(len(_sent(sim, CORPORATE)) == 1, "MDM log: %r" % sim.actions())
        # the same key for another payload: 422, nothing sent
        r = act(gw, CORPORATE, "pin_lock", key="once-1")
        check(r.status == 422, "key reuse: %d %s" % (r.status, r.text))
        # a query-only account may not wipe
        r = act(gw, CORPORATE_2, "corporate_wipe", key="q-1", user="demo")
        check(r.status == 403, "query role: %d" % r.status)
        # ISE API: 200 XML; the repeat within the window answers the first result
        target = "/ciscoise/mdmapi/v3/action/?actionType=pin_lock"
        status, reason = ise_action(gw, target, CORPORATE_2)
        check(status == "true", "ISE pin_lock: %s %s" % (status, reason))
        status, _ = ise_action(gw, target, CORPORATE_2)
        check(status == "true", "ISE repeat: %s" % status)
        check(len(_sent(sim, CORPORATE_2, "pin_lock")) == 1, "MDM log: %r" % sim.actions())
        # full wipe refused on a personal device and on one whose ownership is not reported
        for mac, word in ((PERSONAL, "personal"), (NO_OWNER, "unknown")):
            r = act(gw, mac, "full_wipe", key="fw-" + mac)
            a = js(r)
            check(r.status == 403 and a["state"] == "refused" and word in a["detail"],
                  "full wipe %s: %d %s" % (mac, r.status, r.text))
            status, reason = ise_action(gw, "/ciscoise/mdmapi/v3/action/?actionType=full_wipe",
                                        mac)
            check(status == "false" and word in reason, "ISE full wipe %s: %s" % (mac, reason))
            check(_sent(sim, mac) == [], "a refused wipe reached the MDM")
        # 50 concurrent identical requests make one call to the MDM
        results, lock, go = [], threading.Lock(), threading.Event()

        def one():
            go.wait()
            rr = act(gw, NO_GUID, "pin_lock", key="storm-mcms")
            with lock:
                results.append((rr.status, json.loads(rr.body)))

        threads = [threading.Thread(target=one) for _ in range(50)]
        for t in threads:
            t.start()
        go.set()
        for t in threads:
            t.join(180)
        check(len(results) == 50, "answers: %d" % len(results))
        check(all(s in (200, 409) for s, _ in results) and
              len({b.get("action_id") for _, b in results}) == 1,
              "statuses %r" % sorted({s for s, _ in results}))
        check(len(_sent(sim, NO_GUID)) == 1, "MDM calls: %d" % len(_sent(sim, NO_GUID)))
        intents = [ln for ln in journal_lines(gw) if ln["t"] == "intent"]
        check(len(intents) == 3, "journal intents: %d" % len(intents))
    finally:
        _finish(gw, sim)


def case_mcms_actions_crash_leaves_unknown(env):
    sim = MdmSim()
    gw = None
    try:
        gw = _gateway(env, [_sim_adapter(sim)]).start()
        sim.fault("hold_action", 1)
        out = {}

        def wipe():
            try:
                out["r"] = act(gw, CORPORATE, "corporate_wipe", key="crash-1")
            except Exception as e:  # the gateway dies under it
                out["e"] = e

        t = threading.Thread(target=wipe)
        t.start()
        _wait(lambda: len(_sent(sim, CORPORATE)) == 1, 60, "the wipe to reach the MDM")
        gw.proc.send_signal(signal.SIGKILL)
        gw.proc.wait(60)
        gw.proc = None
        gw.logf.close()
        t.join(60)
        check("r" not in out, "the client got an answer from a killed gateway: %r" % out)
        lines = journal_lines(gw)
        intents = [ln for ln in lines if ln["t"] == "intent"]
        check(len(intents) == 1 and intents[0]["device"] == CORPORATE and
              intents[0]["mdm"] == "cloud" and intents[0]["vendor_id"],
              "journal: %r" % lines)
        aid = intents[0]["id"]
        check(not [ln for ln in lines if ln["t"] == "outcome"], "an outcome: %r" % lines)
        sim.fault("hold_action", 0)
        gw.start()
        check("unknown" in gw.log(), "the unknown action is not logged")
        r = gw.request("GET", "/api/v1/actions?state=unknown", user="boss")
        check(r.status == 200 and [a["action_id"] for a in json.loads(r.body)["actions"]] ==
              [aid], "unknown list: " + r.text)
        # a client retry with the same key sends nothing; another action on the device waits
        r = act(gw, CORPORATE, "corporate_wipe", key="crash-1")
        check(r.status == 409 and js(r)["state"] == "unknown", "retry: %d %s" % (r.status,
                                                                                r.text))
        r = act(gw, CORPORATE, "pin_lock", key="crash-2")
        check(r.status == 409 and js(r)["action_id"] == aid, "device held: " + r.text)
        check(len(_sent(sim, CORPORATE)) == 1, "resent: %r" % sim.actions())
        # the operator checked the MDM's console: it was sent
        r = gw.request("POST", "/api/v1/actions/%s/resolve" % aid, user="boss",
                       body=b'{"result": "sent", "note": "seen in the MDM console"}')
        check(r.status == 200 and js(r)["state"] == "resolved_sent", "resolve: " + r.text)
        r = act(gw, CORPORATE, "pin_lock", key="crash-3")
        check(r.status == 200 and js(r)["state"] == "sent", "device free: " + r.text)
        check(len(_sent(sim, CORPORATE, "pin_lock")) == 1, "pin lock: %r" % sim.actions())
    finally:
        _finish(gw, sim)


def case_mcms_actions_sccm_unsupported_and_ambiguous(env):
    sim = MdmSim()
    sccm = SccmSim()
    gw = None
    try:
        gw = _gateway(env, [{"name": "inventory", "type": "inventory", "file": DEMO_INV},
                            _sim_adapter(sim), sccm.adapter()]).start()
        # a device only SCCM manages: SCCM takes no commands; the reason says so
        r = act(gw, "00:50:56:A1:00:01", "pin_lock", key="sccm-1")
        a = js(r)
        check(r.status == 502 and a["state"] == "rejected" and a["mdm"] == "sccm" and
              a["detail"], "SCCM device: %d %s" % (r.status, r.text))
        # the inventory and the cloud MDM both report this MAC: refused, nothing sent
        r = act(gw, NO_OWNER, "pin_lock", key="amb-1")
        a = js(r)
        check(r.status == 403 and a["state"] == "refused" and "cloud" in a["detail"] and
              "inventory" in a["detail"], "ambiguous: %d %s" % (r.status, r.text))
        status, reason = ise_action(gw, "/ciscoise/mdmapi/v3/action/?actionType=pin_lock",
                                    NO_OWNER)
        check(status == "false" and "cloud" in reason, "ISE ambiguous: " + reason)
        check(sim.actions() == [], "an ambiguous action reached the MDM: %r" % sim.actions())
    finally:
        _finish(gw, sim, sccm)
