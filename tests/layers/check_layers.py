#!/usr/bin/env python3
"""The rules of the house (docs/architecture.md), checked on the product sources.

  check_layers.py [--root DIR]

1. Layers: every `#include "..."` of a product file (core/, cache/, adapters/, gateway/*/) must
   name a file in a room the including room may use (ALLOWED below). Includes of system and
   library headers (<...>) are not ours and are not checked.
2. Sizes: no product .c file over MAX_FILE_LINES lines, no function over MAX_FUNCTION_LINES
   (from the line of its opening brace to the line of its closing one; the code is formatted
   with the Linux brace style, so a function's braces stand alone in column 0).

Prints one line per breach, "file:line: what is wrong", then "check-layers: N files, ok" or
"check-layers: N breaches"; exits 1 on any breach.
"""
import argparse
import os
import re
import sys

MAX_FILE_LINES = 1500
MAX_FUNCTION_LINES = 80

# Which rooms each room may include (besides itself). The arrows of docs/architecture.md.
# core/ is the shared vocabulary and includes nothing of ours; cache/ and adapters/ build on
# core/ only; in gateway/, app/ wires everything and nothing includes it.
ALLOWED = {
    "core": set(),
    "cache": {"core"},
    "adapters": {"core"},
    "gateway/server": {"core"},
    "gateway/verdict": {"core", "cache", "adapters"},
    "gateway/actions": {"core", "cache", "adapters", "gateway/verdict"},
    "gateway/recon": {"core", "cache", "adapters", "gateway/verdict"},
    "gateway/coa": {"core", "adapters"},
    "gateway/ise": {"core", "cache", "adapters", "gateway/server", "gateway/verdict",
                    "gateway/actions", "gateway/recon"},
    # the operator's API over every part (it reads every part's counters for /metrics)
    "gateway/admin": {"core", "cache", "adapters", "gateway/server", "gateway/verdict",
                      "gateway/actions", "gateway/recon", "gateway/coa", "gateway/ise"},
    "gateway/app": {"core", "cache", "adapters", "gateway/server", "gateway/verdict",
                    "gateway/actions", "gateway/recon", "gateway/coa", "gateway/ise",
                    "gateway/admin"},
}
# Why a pair is refused, for the rules the issue that made the house names one by one.
WHY = {
    ("gateway/recon", "gateway/coa"): "recon/ hands transitions to CoA through core/transition.h",
    ("gateway/verdict", "gateway/ise"): "the verdict is computed once; rendering belongs to ise/",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def room_of(rel):
    parts = rel.split("/")
    if parts[0] == "gateway" and len(parts) >= 3:
        return "gateway/" + parts[1]
    if parts[0] in ("core", "cache", "adapters") and len(parts) == 2:
        return parts[0]
    return None


def product_files(root):
    out = []
    for top in ("core", "cache", "adapters", "gateway"):
        for d, _, fs in os.walk(os.path.join(root, top)):
            for f in fs:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def why_refused(src, dst):
    if dst == "gateway/app":
        return "nothing includes app/ (it wires the rooms; they do not know it)"
    if (src, dst) in WHY:
        return WHY[(src, dst)]
    if src == "core":
        return "core/ includes nothing of ours"
    if src in ("cache", "adapters"):
        return f"{src}/ includes only core/"
    if src == "gateway/server":
        return "server/ dispatches through its handler table and includes no handler module"
    return f"{src}/ may include only " + ", ".join(sorted(ALLOWED[src] | {src}))


def check_includes(root, rel, lines, breaches):
    src = room_of(rel)
    if src is None:
        breaches.append(f"{rel}:1: not in a room (core/, cache/, adapters/, gateway/<room>/)")
        return
    if src not in ALLOWED:
        breaches.append(f"{rel}:1: room {src}/ is not in the rules (tests/layers/check_layers.py)")
        return
    for n, line in enumerate(lines, 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        target = os.path.normpath(os.path.join(os.path.dirname(rel), m.group(1)))
        if not os.path.exists(os.path.join(root, target)):
            breaches.append(f"{rel}:{n}: includes {m.group(1)}, which does not exist")
            continue
        dst = room_of(target)
        if dst is None:
            breaches.append(f"{rel}:{n}: includes {target}, which is not product code")
        elif dst != src and dst not in ALLOWED[src]:
            breaches.append(f"{rel}:{n}: includes {target}: {why_refused(src, dst)}")


FUNC_OPEN = re.compile(r"^\{\s*$")
FUNC_CLOSE = re.compile(r"^\}\s*$")


def check_sizes(rel, lines, breaches):
    if rel.endswith(".c") and len(lines) > MAX_FILE_LINES:
        breaches.append(f"{rel}:{len(lines)}: {len(lines)} lines (at most {MAX_FILE_LINES})")
    start = None
    for n, line in enumerate(lines, 1):
        if FUNC_OPEN.match(line):
            start = n
        elif FUNC_CLOSE.match(line) and start is not None:
            length = n - start + 1
            if length > MAX_FUNCTION_LINES:
                name = "?"
                for back in range(start - 2, max(start - 8, -1), -1):
                    m = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", lines[back])
                    if m and not lines[back].startswith((" ", "\t")):
                        name = m.group(1)
                        break
                breaches.append(f"{rel}:{start}: function {name} is {length} lines "
                                f"(at most {MAX_FUNCTION_LINES})")
            start = None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", ".."))
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    breaches = []
    files = product_files(root)
    for rel in files:
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            lines = f.read().split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        check_includes(root, rel, lines, breaches)
        check_sizes(rel, lines, breaches)
    for b in breaches:
        print(b)
    if breaches:
        print(f"check-layers: {len(breaches)} breaches")
        sys.exit(1)
    print(f"check-layers: {len(files)} files, ok")


if __name__ == "__main__":
    main()
