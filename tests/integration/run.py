#!/usr/bin/env python3
"""Integration suite: starts the real mdmgw binary on free loopback ports with TLS and drives it
as a NAC engine would. Prints one line per test and a closing 'N passed, N failed'.

  run.py --binary build/plain/mdmgw [--valgrind] [--only NAME] [--summary FILE] [--label L]
"""
import argparse
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cases  # noqa: E402
from lib import Gateway  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--valgrind", action="store_true")
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--summary")
    ap.add_argument("--label", default="integration")
    ap.add_argument("--regen", action="store_true",
                    help="rewrite golden .res files from what the gateway answers (review them!)")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    env = cases.Env(binary, a.valgrind, a.regen)
    passed = failed = 0
    shared = Gateway(binary, valgrind=a.valgrind, name="demo").start()
    env.demo = shared
    try:
        for name, fn in cases.all_cases():
            if a.only and not any(o in name for o in a.only):
                continue
            if a.valgrind and getattr(fn, "skip_valgrind", False):
                continue
            t0 = time.monotonic()
            try:
                fn(env)
                passed += 1
                print("ok    %-48s %6.2fs" % (name, time.monotonic() - t0), flush=True)
            except Exception:  # a failing test must not stop the others
                failed += 1
                print("FAIL  %-48s %6.2fs" % (name, time.monotonic() - t0), flush=True)
                traceback.print_exc()
    finally:
        rc = shared.stop()
        if rc != 0:
            failed += 1
            print("FAIL  demo gateway exit code %s (valgrind errors exit 99)" % rc)
            print(shared.log()[-6000:])
        else:
            passed += 1
            print("ok    %-48s" % "demo gateway stops cleanly (exit 0)")
        shared.cleanup()
    print("%s: %d passed, %d failed" % (a.label, passed, failed))
    if a.summary:
        with open(a.summary, "a") as f:
            f.write("%s %d %d\n" % (a.label, passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
