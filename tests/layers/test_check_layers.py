#!/usr/bin/env python3
"""Shows that check_layers.py can fail: each rule of the house is broken once, in a temporary
copy of the product sources, and the check must name the file, the line and the rule.

  test_check_layers.py [--summary FILE]

Prints one line per case and "layers: N passed, M failed"; appends "layers N M" to the summary
file; exits 1 on any failure.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CHECK = os.path.join(HERE, "check_layers.py")

# (name, file to plant into, include to plant, words the breach line must hold)
PLANTED_INCLUDES = [
    ("core includes nothing of ours", "core/buf.c", "../cache/cache.h",
     "core/ includes nothing of ours"),
    ("cache includes only core", "cache/mem.c", "../adapters/adapter.h",
     "cache/ includes only core/"),
    ("adapters include only core", "adapters/fanout.c", "../gateway/verdict/merge.h",
     "adapters/ includes only core/"),
    ("nothing includes app", "gateway/verdict/merge.c", "../app/config.h",
     "nothing includes app/"),
    ("server includes no handler module", "gateway/server/server.c", "../admin/admin.h",
     "server/ dispatches through its handler table"),
    ("recon does not include coa", "gateway/recon/trans.c", "../coa/coa.h",
     "recon/ hands transitions to CoA"),
    ("verdict does not include ise", "gateway/verdict/lookup.c", "../ise/ise_api.h",
     "the verdict is computed once"),
]


def copy_tree(dst):
    for top in ("core", "cache", "adapters", "gateway"):
        shutil.copytree(os.path.join(ROOT, top), os.path.join(dst, top),
                        ignore=shutil.ignore_patterns("*.o", "*.d"))


def run_check(root):
    """The check's exit code and its breach lines (its closing count left out)."""
    p = subprocess.run([sys.executable, CHECK, "--root", root], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    return p.returncode, [l for l in p.stdout.splitlines() if not l.startswith("check-layers:")]


def new_lines(before, after, planted):
    """Breaches after planting that were not there before; a size breach of the planted file
    that only moved (its line count grew by the planted line) is not new."""
    old_sizes = {l.split(":")[0] for l in before if " lines (at most " in l}
    return [l for l in after if l not in before and
            not (l.split(":")[0] == planted and planted in old_sizes and " lines (at most " in l)]


def plant_include(root, rel, include):
    """Adds the include after the file's first #include line; returns that line's number."""
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    at = next(i for i, l in enumerate(lines) if l.startswith("#include")) + 1
    lines.insert(at, f'#include "{include}"')
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return at + 1


def plant_long_function(root, rel, body_lines):
    with open(os.path.join(root, rel), "a", encoding="utf-8") as f:
        f.write("\nint planted_long(void)\n{\n\tint n = 0;\n\n")
        f.write("\tn++;\n" * body_lines)
        f.write("\treturn n;\n}\n")


def case_clean(root, _):
    """The copy as it is: whatever the check says of the real tree, it says of the copy."""
    rc, out = run_check(root)
    rc_real, out_real = run_check(ROOT)
    return rc == rc_real and out == out_real, "copy and tree differ:\n" + "\n".join(out)


def make_include_case(rel, include, words):
    def case(root, before):
        line = plant_include(root, rel, include)
        rc, out = run_check(root)
        want = f"{rel}:{line}: includes"
        new = new_lines(before, out, rel)
        hits = [l for l in new if l.startswith(want) and words in l]
        ok = rc == 1 and len(hits) == 1 and new == hits
        return ok, f"exit {rc}; wanted one new line '{want} ... {words}', got:\n" + "\n".join(new)
    return case


def case_long_function(root, before):
    rel = "core/err.c"
    plant_long_function(root, rel, 76)  # 81 lines from brace to brace
    rc, out = run_check(root)
    new = new_lines(before, out, rel)
    ok = rc == 1 and len(new) == 1 and "function planted_long is 81 lines" in new[0]
    return ok, "got:\n" + "\n".join(new)


def case_function_at_limit(root, before):
    rel = "core/err.c"
    plant_long_function(root, rel, 75)  # 80 lines: allowed
    _, out = run_check(root)
    new = new_lines(before, out, rel)
    return not new, "an 80-line function was refused:\n" + "\n".join(new)


def case_long_file(root, before):
    rel = "core/err.c"
    path = os.path.join(root, rel)
    with open(path, encoding="utf-8") as f:
        n = f.read().count("\n")
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" * (1501 - n))
    rc, out = run_check(root)
    new = new_lines(before, out, "")
    ok = rc == 1 and len(new) == 1 and "1501 lines (at most 1500)" in new[0]
    return ok, "got:\n" + "\n".join(new)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--summary")
    a = ap.parse_args()
    cases = [("the unplanted copy reads as the tree", case_clean)]
    cases += [(f"planted: {name}", make_include_case(rel, inc, words))
              for name, rel, inc, words in PLANTED_INCLUDES]
    cases += [("planted: a function of 81 lines", case_long_function),
              ("a function of 80 lines passes", case_function_at_limit),
              ("planted: a .c file of 1501 lines", case_long_file)]
    passed = failed = 0
    for name, fn in cases:
        with tempfile.TemporaryDirectory(prefix="mdmgw-layers-") as root:
            copy_tree(root)
            _, before = run_check(root)
            ok, why = fn(root, before)
        if ok:
            passed += 1
            print(f"ok    {name}")
        else:
            failed += 1
            print(f"FAIL  {name}: {why}")
    print(f"layers: {passed} passed, {failed} failed")
    if a.summary:
        with open(a.summary, "a", encoding="utf-8") as f:
            f.write(f"layers {passed} {failed}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
