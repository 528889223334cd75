"""Integration cases for the cloud MDM adapter ("mcms"): the real gateway binary with an mcms
adapter in front of the ISE MDM API simulator (tests/sim/mdm_sim.py), a gateway in front of a
gateway, loops refused, and every test-connection cause through the CLI and the admin API.
"""
import json
import subprocess
import time
import xml.etree.ElementTree as ET

from lib import CA, ACCOUNTS, MdmSim, free_port

V3 = "/ciscoise/mdmapi/v3/devices/?paging=%s&querycriteria=%s&value=%s&filter=all"
ALL = "/ciscoise/mdmapi/v3/devices/?paging=%s&filter=all"
NONCOMP = "/ciscoise/mdmapi/v3/devices/?paging=%s&querycriteria=compliance&value=false&filter=all"

# (criterion, value, MAC of the device the simulator's data set answers, compliance status)
IDENTIFIERS = [
    ("macaddress", "F018983A4B5C", "F018983A4B5C", "true"),
    ("guid", "1759c0fd-c8da-49e8-b14f-19d85acfacea", "0026B424FEB4", "false"),
    ("udid", "00008110-000C1D2E3F40801E", "A483E7445566", "false"),
    ("imei", "354406100876543", "5CF938A1B2C3", "true"),
    ("meid", "99000112233445", "5CF938A1B2C3", "true"),
    ("username", "dave", "10DDB1CAFE01", "true"),
    ("guidhn", "alice-iphone", "F018983A4B5C", "true"),
]


def _check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def _timeout(env):
    return "5s" if env.valgrind else "3s"


def _sim_adapter(sim, name="cloud", **extra):
    ad = {"name": name, "type": "mcms", "url": sim.root, "ca_file": sim.ca, "user": sim.user,
          "password": sim.password, "breaker_failures": 0}
    if sim.instance:
        ad["instance"] = sim.instance
    ad.update(extra)
    return ad


def _gw_adapter(gw, name="upstream", **extra):
    """An mcms adapter whose MDM is another gateway's ISE API (its CA, a query account)."""
    ad = {"name": name, "type": "mcms", "url": "https://127.0.0.1:%d" % gw.port, "ca_file": CA,
          "user": "demo", "password": ACCOUNTS["demo"][0], "breaker_failures": 0}
    ad.update(extra)
    return ad


def _gateway(env, adapters, api=None, name="mcms"):
    over = {"adapters": adapters,
            "api": dict({"lookup_timeout": _timeout(env)}, **(api or {}))}
    if env.valgrind:
        over["listen"] = {"header_timeout": "30s"}
    return env.gateway(overrides=over, name=name)


def _rewrite(gw, adapters):
    """Points a gateway not started yet at other adapters (for loops: ports known only now)."""
    gw.config["adapters"] = adapters
    with open(gw.config_path, "w") as f:
        json.dump(gw.config, f, indent=1)


def _devices(r):
    return ET.fromstring(r.body).findall("./deviceList/device")


def _text(dev, path):
    el = dev.find(path)
    return el.text if el is not None else None


def _stop(*things):
    errs = []
    for t in things:
        if t is None:
            continue
        try:
            if hasattr(t, "cleanup"):
                rc = t.stop()
                t.cleanup()
                if rc not in (0, None):
                    errs.append("gateway %s exit %s:\n%s" % (t.name, rc, t.log()[-3000:]))
            else:
                t.stop()
        except AssertionError as e:
            errs.append(str(e))
    return errs


def _lookups_answer_sim_data(gw, label):
    for crit, value, mac, status in IDENTIFIERS:
        r = gw.request("GET", V3 % (0, crit, value))
        _check(r.status == 200, "%s %s=%s: %d %s" % (label, crit, value, r.status, r.text))
        devs = _devices(r)
        _check(len(devs) == 1, "%s %s=%s: %d devices\n%s" % (label, crit, value, len(devs),
                                                             r.text))
        macs = _text(devs[0], "./attributes/macaddresses") or _text(devs[0], "./macaddress")
        _check(macs and mac in macs, "%s %s=%s: MACs %r\n%s" % (label, crit, value, macs, r.text))
        _check(_text(devs[0], "./attributes/compliance/status") == status,
               "%s %s=%s: compliance\n%s" % (label, crit, value, r.text))
    # unknown: an empty list, not 503
    r = gw.request("GET", V3 % (0, "macaddress", "020000000099"))
    _check(r.status == 200 and not _devices(r), "%s unknown: %d %s" % (label, r.status, r.text))


def _walk(gw, first):
    """Every page of a bulk query through the gateway: the keys seen, in order."""
    seen, cursor, pages = [], "0", 0
    while True:
        r = gw.request("GET", first % cursor)
        _check(r.status == 200, "page %s: %d %s" % (cursor, r.status, r.text))
        root = ET.fromstring(r.body)
        for d in root.findall("./deviceList/device"):
            seen.append(_text(d, "./macaddress") or _text(d, "./guid"))
        pages += 1
        cursor = root.findtext("./paging_info") or "0"
        if cursor == "0":
            return seen, pages
        _check(pages < 100, "paging does not end")


def case_mcms_lookups_and_walks(env):
    """ISE API -> gateway -> cloud MDM simulator: every identifier answers the simulator's data;
    compliance=false and no-criterion walks through pages smaller than the simulator's (which
    are smaller than the data set) see every device once."""
    sim = MdmSim(query_max_size=25)
    gw = None
    try:
        gw = _gateway(env, [_sim_adapter(sim)], api={"query_max_size": 10}).start()
        _lookups_answer_sim_data(gw, "gw")
        seen, pages = _walk(gw, ALL)
        _check(len(seen) == 67 and len(set(seen)) == 67 and pages == 7,
               "all: %d devices (%d distinct) in %d pages" % (len(seen), len(set(seen)), pages))
        seen, pages = _walk(gw, NONCOMP)
        _check(len(seen) == 15 and len(set(seen)) == 15 and pages == 2,
               "non-compliant: %d in %d pages" % (len(seen), pages))
        _check(sim.counts()["by_query"].get("all", 0) == 3, "sim pages %r" % sim.counts())
    finally:
        errs = _stop(gw, sim)
        _check(not errs, "\n".join(errs))


def case_mcms_gateway_in_front_of_gateway(env):
    """gateway -> gateway -> simulator answers the same, lookups and walks; the hop headers
    travel (the first gateway saw the second as downstream and refuses nothing)."""
    sim = MdmSim(query_max_size=25)
    gw1 = gw2 = None
    try:
        gw1 = _gateway(env, [_sim_adapter(sim)], api={"query_max_size": 10,
                                                      "gateway_id": "gw-one"}, name="one")
        gw1.start()
        gw2 = _gateway(env, [_gw_adapter(gw1)],
                       api={"query_max_size": 7, "gateway_id": "gw-two",
                            "lookup_timeout": "8s" if env.valgrind else "4s"}, name="two")
        gw2.start()
        _lookups_answer_sim_data(gw2, "gw2")
        seen, pages = _walk(gw2, ALL)
        _check(len(seen) == 67 and len(set(seen)) == 67 and pages == 10,
               "all via two gateways: %d (%d distinct) in %d pages" % (len(seen), len(set(seen)),
                                                                       pages))
        seen, _ = _walk(gw2, NONCOMP)
        _check(len(seen) == 15 and len(set(seen)) == 15, "non-compliant via two: %d" % len(seen))
        _check(gw1.metrics().get("mdmgw_hops_refused_total", -1) == 0, "gw1 refused something")
        r = subprocess.run([env.binary, "test-connection", "-c", gw2.config_path, "upstream"],
                           capture_output=True, timeout=120)
        out = (r.stdout + r.stderr).decode()
        _check(r.returncode == 0 and "Connection to server is successful: API version 3, "
               "query_max_size 10" in out, "test-connection to gw1: %d %s" % (r.returncode, out))
    finally:
        errs = _stop(gw2, gw1, sim)
        _check(not errs, "\n".join(errs))


def _loop_lookup(env, gw, label):
    t0 = time.monotonic()
    r = gw.request("GET", V3 % (0, "macaddress", "F018983A4B5C"), timeout=60)
    took = time.monotonic() - t0
    _check(r.status == 503, "%s: %d %s" % (label, r.status, r.text))
    _check(took < (20 if env.valgrind else 5), "%s took %.1fs" % (label, took))


def case_mcms_loop_refused(env):
    """A gateway pointed at itself, and two gateways each the other's upstream: the request
    that comes back is refused with 508, lookups answer 503 quickly, and the connection test
    says it is a loop."""
    a = b = selfish = None
    try:
        selfish = _gateway(env, [], api={"gateway_id": "gw-self"}, name="self")
        _rewrite(selfish, [_gw_adapter(selfish, name="me")])
        selfish.start()
        _loop_lookup(env, selfish, "self loop")
        _check(selfish.metrics().get("mdmgw_hops_refused_total", 0) >= 1, "no 508 counted")
        _check("loop: this gateway (gw-self)" in selfish.log(), "refusal not logged")
        st, doc = _test_api(selfish, "me")
        _check(st == 502 and not doc["ok"] and "508" in doc["message"] and
               "loop" in doc["message"], "self test: %d %r" % (st, doc))

        a = _gateway(env, [], api={"gateway_id": "gw-a"}, name="a")
        b = _gateway(env, [], api={"gateway_id": "gw-b"}, name="b")
        _rewrite(a, [_gw_adapter(b, name="to-b")])
        _rewrite(b, [_gw_adapter(a, name="to-a")])
        a.start()
        b.start()
        for _ in range(2):
            _loop_lookup(env, a, "a<->b at a")
            _loop_lookup(env, b, "a<->b at b")
        refused = (a.metrics().get("mdmgw_hops_refused_total", 0) +
                   b.metrics().get("mdmgw_hops_refused_total", 0))
        _check(refused >= 1, "a<->b: nothing refused\n%s\n%s" % (a.log()[-2000:],
                                                                b.log()[-2000:]))
    finally:
        errs = _stop(selfish, a, b)
        _check(not errs, "\n".join(errs))


def _test_cli(env, gw, name):
    r = subprocess.run([env.binary, "test-connection", "-c", gw.config_path, name],
                       capture_output=True, timeout=120)
    return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")


def _test_api(gw, name):
    r = gw.request("POST", "/api/v1/adapters/%s/test" % name, user="boss", body=b"")
    return r.status, json.loads(r.body)


def case_mcms_test_connection_causes(env):
    """Every test-connection cause with the seed's message, through `mdmgw test-connection`
    (exit code and message) and POST /api/v1/adapters/{name}/test."""
    main = MdmSim(query_max_size=25)
    sims = [main]
    gw = None
    try:
        inst = MdmSim(instance="tenant7", certs_dir=main.dir)
        sims.append(inst)
        norole = MdmSim(role="none", certs_dir=main.dir)
        sims.append(norole)
        other = MdmSim(cert="other-server", certs_dir=main.dir)
        sims.append(other)
        expired = MdmSim(cert="expired-server", certs_dir=main.dir)
        sims.append(expired)
        closed = {"url": "https://127.0.0.1:%d" % free_port()}
        cases = [
            ("ok", _sim_adapter(main, name="ok"), True,
             "Connection to server is successful: API version 3, query_max_size 25"),
            ("badpw", _sim_adapter(main, name="badpw", password="wrong"), False,
             "HTTP 401: wrong user name or password"),
            ("noinst", _sim_adapter(main, name="noinst", instance="tenant7"), False,
             "HTTP 404: an instance name was configured when not needed, or the instance is "
             "wrong"),
            ("inst", _sim_adapter(inst, name="inst"), True, "Connection to server is successful"),
            ("wronginst", _sim_adapter(inst, name="wronginst", instance="tenant8"), False,
             "HTTP 404"),
            ("norole", _sim_adapter(norole, name="norole"), False,
             "HTTP 403: the API account lacks the REST API MDM role"),
            ("otherca", _sim_adapter(other, name="otherca"), False,
             "certificate is not trusted: import the MDM's certificate or its CA into"),
            ("expired", _sim_adapter(expired, name="expired"), False,
             "certificate has expired"),
            ("closed", dict(_sim_adapter(main, name="closed", connect_timeout="1s"), **closed),
             False, "check routing and the firewall between the gateway and the MDM; outbound "
             "HTTPS to it must be allowed"),
        ]
        gw = _gateway(env, [ad for _, ad, _, _ in cases]).start()
        bad = []
        for name, _, ok, want in cases:
            rc, out = _test_cli(env, gw, name)
            if rc != (0 if ok else 1) or want not in out:
                bad.append("cli %s: %d %s" % (name, rc, out))
            st, doc = _test_api(gw, name)
            if st != (200 if ok else 502) or doc.get("ok") != ok or want not in doc["message"]:
                bad.append("api %s: %d %r" % (name, st, doc))
        _check(not bad, "\n".join(bad))
        # the wrong ones never answer a lookup with a verdict
        r = gw.request("GET", V3 % (0, "macaddress", "F018983A4B5C"))
        _check(r.status == 200 and len(_devices(r)) >= 1, "ok adapter: %d %s" % (r.status,
                                                                                r.text))
    finally:
        errs = _stop(gw, *reversed(sims))
        _check(not errs, "\n".join(errs))
