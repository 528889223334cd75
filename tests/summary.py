#!/usr/bin/env python3
"""Sums the per-step counts written by the test runners into one closing line."""
import sys
passed = failed = 0
for line in open(sys.argv[1]):
    label, p, f = line.split()
    passed += int(p); failed += int(f)
    print(f"  {label}: {p} passed, {f} failed")
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
