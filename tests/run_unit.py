#!/usr/bin/env python3
"""Runs cmocka unit-test binaries, prints one line each and a closing 'N passed, N failed'."""
import argparse, re, subprocess, sys

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary")
    ap.add_argument("--label", default="unit")
    ap.add_argument("binaries", nargs="*")
    a = ap.parse_args()
    passed = failed = 0
    for b in a.binaries:
        p = subprocess.run([b], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=600)
        out = p.stdout
        m_ok = re.search(r"\[  PASSED  \] (\d+) test", out)
        m_bad = re.search(r"\[  FAILED  \] (\d+) test", out)
        ok = int(m_ok.group(1)) if m_ok else 0
        bad = int(m_bad.group(1)) if m_bad else 0
        if p.returncode != 0 and bad == 0:
            bad = 1  # crashed or sanitizer abort: count the binary as one failure
        if bad:
            sys.stdout.write(out)
        print(f"{a.label}: {b}: {ok} passed, {bad} failed")
        passed += ok
        failed += bad
    print(f"{a.label}: {passed} passed, {failed} failed")
    if a.summary:
        with open(a.summary, "a") as f:
            f.write(f"{a.label} {passed} {failed}\n")
    sys.exit(1 if failed or not a.binaries else 0)

if __name__ == "__main__":
    main()
