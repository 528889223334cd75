"""Integration cases of the generational snapshot (gateway/recon/snapshot.c): the NAC's non-compliant
poll walked in small pages with generation-bound cursors, and lookups answered from its
indexes while the vendor is down."""

import os
import tempfile
import xml.etree.ElementTree as ET

from cases import big_inventory, check
from cases_mcms import _gateway, _sim_adapter, _stop
from lib import MdmSim

NONCOMP = "/ciscoise/mdmapi/v3/devices/?paging=%d&querycriteria=compliance&value=false&filter=all"


def case_snapshot_noncompliant_walk_pages_of_2(env):
    """query_max_size 2: the non-compliant poll comes in pages of at most 2, every device once,
    each cursor naming the walk's generation; a cursor naming a generation the gateway does not
    keep is refused with a clear 400, not answered from another list."""
    d = tempfile.mkdtemp(prefix="mdmgw-inv-")
    inv = os.path.join(d, "inv.json")
    big_inventory(inv, 25)  # devices 0, 3, ..., 24 are non-compliant: 9 of them
    gw = env.gateway(inventory=inv, overrides={"api": {"query_max_size": 2}}).start()
    try:
        conn = gw.connect()
        cursor, seen, pages, cursors = 0, [], 0, []
        while True:
            r = gw.request("GET", NONCOMP % cursor, conn=conn)
            check(r.status == 200, "page at %d: %d %s" % (cursor, r.status, r.body[:200]))
            x = ET.fromstring(r.body)
            devs = x.findall("deviceList/device")
            check(len(devs) <= 2, "page of %d" % len(devs))
            for dev in devs:
                check(dev.findtext("attributes/compliance/status") == "false",
                      "a compliant device in the non-compliant poll")
            seen += [dev.findtext("macaddress") for dev in devs]
            pages += 1
            cursor = int(x.findtext("paging_info"))
            if cursor == 0:
                break
            cursors.append(cursor)
            check(pages < 50, "walk does not end")
        want = ["02%010X" % (0x10000 + i) for i in range(0, 25, 3)]
        check(seen == want, "walk saw %r" % seen)
        check(pages == 5, "pages %d" % pages)
        # start-up is generation 1: every cursor carries it in its low 10 bits
        check(all(c & 1023 == 1 for c in cursors), "cursors %r" % cursors)
        check(len(set(cursors)) == len(cursors), "cursors repeat %r" % cursors)
        r = gw.request("GET", NONCOMP % (cursors[0] ^ 1), conn=conn)  # generation 0: never kept
        check(r.status == 400 and b"paging cursor expired" in r.body,
              "foreign generation: %d %r" % (r.status, r.body[:200]))
        r = gw.request("GET", NONCOMP % (cursors[0] & ~1023 | 2), conn=conn)  # a future one
        check(r.status == 400 and b"not a paging_info value" in r.body,
              "future generation: %d %r" % (r.status, r.body[:200]))
        r = gw.request("GET", NONCOMP % (1000 << 10 | 1), conn=conn)  # past the end
        check(r.status == 400, "past the end: %d" % r.status)
        conn.close()
    finally:
        check(gw.stop() == 0, "exit code")
        gw.cleanup()
        os.unlink(inv)
        os.rmdir(d)


def case_snapshot_lookups_from_index_vendor_down(env):
    """With the cloud MDM failing after start-up, lookups by udid, imei and guid still answer
    from the start-up snapshot's indexes (the live path would say 503); a MAC lookup stays on
    the live path, a cache hit as the first cycle wrote it through; a value the snapshot does
    not hold is asked live and says 503. (The ISE API
    listing carries no user or host names, so those are asked live here; the unit tests cover
    their indexes.)"""
    sim = MdmSim(query_max_size=25)
    gw = None
    try:
        gw = _gateway(env, [_sim_adapter(sim)]).start()
        sim.fault("status", 503)
        api = "/ciscoise/mdmapi/v3/devices/?paging=0&querycriteria=%s&value=%s&filter=all"
        for crit, value in (("udid", "00008030-001a2b3c4d5e802e"), ("imei", "356938035643809"),
                            ("guid", "b1f6a2e0-1c3d-4e5f-8a9b-0c1d2e3f4a5b")):
            r = gw.request("GET", api % (crit, value))
            check(r.status == 200, "%s lookup with the vendor down: %d %r"
                  % (crit, r.status, r.body[:300]))
            x = ET.fromstring(r.body)
            serials = [d.findtext("attributes/serial_number") for d in x.findall(
                "deviceList/device")]
            check(serials == ["F2LXK0AAHG7F"], "%s: serials %r" % (crit, serials))
            macs = [d.findtext("macaddress") or d.findtext("guid")
                    for d in x.findall("deviceList/device")]
            check(len(macs) >= 1, "%s: no device" % crit)
            check(any(m in ("F018983A4B5C", "b1f6a2e0-1c3d-4e5f-8a9b-0c1d2e3f4a5b")
                      for m in macs), "%s answered %r %r" % (crit, macs, serials))
        r = gw.request("GET", api % ("udid", "00008030-00FFFFFFFFFFFFFF"))
        check(r.status == 503, "unknown udid goes live (vendor down): %d" % r.status)
        # MAC lookups stay on the live (cache) path, which the reconciler's first cycle wrote
        # through: a hit, the vendor is not asked (it would say 503)
        r = gw.request("GET", api % ("macaddress", "F018983A4B5C"))
        check(r.status == 200, "MAC lookups are cache hits after a cycle: %d" % r.status)
    finally:
        errs = _stop(gw, sim)
        check(not errs, "\n".join(errs))
