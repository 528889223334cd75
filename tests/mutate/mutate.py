#!/usr/bin/env python3
"""Mutation run: applies each curated mutant to a scratch copy of the tree, builds, runs the tests
that should kill it, and says which test did (or that it survived).

  mutate.py [--only PATTERN]... [--list] [--keep] [--timeout S] [MUTFILE...]

Mutants live in tests/mutate/mutants/*.mut (format: tests/mutate/README.md). The scratch copy is
build/mutate/tree: the working tree's tracked and untracked (not ignored) files, built once
unmutated; each mutant then rebuilds only what its file touches. Before any mutant, every test the
selected mutants name is run on the unmutated copy: a test that fails there could not tell a
mutant from the truth, so the run stops.

Prints one line per mutant, "killed   ID  by TEST" or "SURVIVED ID", and ends with the line
"mutants killed N/M". Exit status 0 only when every mutant was killed.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCRATCH = os.path.join(ROOT, "build", "mutate")
TREE = os.path.join(SCRATCH, "tree")
BUILD = "build/plain"
UNIT_TIMEOUT = 300  # seconds for one unit binary; a mutant that hangs a test is killed by it
INTEG_TIMEOUT = 900


class MutFileError(Exception):
    pass


class Mutant:
    def __init__(self, ident, origin):
        self.id = ident
        self.origin = origin  # "file:line" of the mutant line, for messages
        self.file = None
        self.tests = []
        self.why = ""
        self.hunks = []  # [(find_lines, replace_lines)]


def parse_mutfile(path):
    """Reads one .mut file into Mutants; MutFileError names the file, line and what is wrong."""
    mutants = []
    cur = None
    find, repl = None, None

    def close_hunk(lineno):
        nonlocal find, repl
        if find is not None:
            if not find:
                raise MutFileError(f"{path}:{lineno}: a hunk needs '- ' lines to find")
            cur.hunks.append((find, repl or []))
        find, repl = None, None

    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    for n, raw in enumerate(lines, 1):
        where = f"{path}:{n}"
        if cur is None:
            if not raw.strip() or raw.startswith("#"):
                continue
            m = re.fullmatch(r"mutant ([a-z0-9_]+\.[a-z0-9_.]+)", raw)
            if not m:
                raise MutFileError(f"{where}: expected 'mutant <area>.<name>', got {raw!r}")
            cur = Mutant(m.group(1), where)
            continue
        if raw.startswith("- ") or raw == "-":
            if repl is not None:
                close_hunk(n)
            if find is None:
                find = []
            find.append(raw[2:])
        elif raw.startswith("+ ") or raw == "+":
            if find is None:
                raise MutFileError(f"{where}: '+ ' line without '- ' lines before it")
            if repl is None:
                repl = []
            repl.append(raw[2:])
        else:
            close_hunk(n)
            key, _, val = raw.partition(" ")
            if raw == "end":
                if not cur.file or not cur.tests or not cur.hunks or not cur.why:
                    raise MutFileError(f"{cur.origin}: mutant {cur.id} needs file, tests, "
                                       "why and at least one hunk")
                mutants.append(cur)
                cur = None
            elif key == "file":
                cur.file = val.strip()
            elif key == "tests":
                cur.tests = val.split()
            elif key == "why":
                cur.why = val.strip()
            elif raw.startswith("#") or not raw.strip():
                continue
            else:
                raise MutFileError(f"{where}: unknown line in mutant {cur.id}: {raw!r}")
    if cur is not None:
        raise MutFileError(f"{cur.origin}: mutant {cur.id} has no 'end'")
    return mutants


def apply_hunks(text, m):
    """The text with every hunk of m applied; MutFileError if a hunk does not match once."""
    for find, repl in m.hunks:
        # whole lines only: the block is looked for from a line start to a line end
        needle = "\n" + "\n".join(find) + "\n"
        count = ("\n" + text).count(needle)
        if count != 1:
            raise MutFileError(f"{m.origin}: mutant {m.id}: the '- ' block is found {count} "
                               f"times in {m.file} (must be exactly once): {find[0]!r}")
        text = ("\n" + text).replace(needle, "\n" + "".join(r + "\n" for r in repl))[1:]
    return text


def sh(args, cwd, timeout=None, env=None):
    """Runs args; returns (returncode, output). A timeout returns (None, output so far)."""
    try:
        p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode("utf-8", "replace")


def copy_tree():
    """Copies the working tree (tracked and untracked, not ignored) and its certificates to TREE,
    keeping an earlier build there so only what changed is rebuilt."""
    rc, out = sh(["git", "ls-files", "-co", "--exclude-standard", "-z"], ROOT)
    if rc != 0:
        sys.exit("mutate: git ls-files failed:\n" + out)
    files = [f for f in out.split("\0") if f]
    files += [os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "certs", "*.pem"))]
    for rel in files:
        src, dst = os.path.join(ROOT, rel), os.path.join(TREE, rel)
        if not os.path.isfile(src):
            continue  # deleted in the working tree but still in the index
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        # copy2 keeps mtimes, so make rebuilds only files that changed since the last run
        if not os.path.exists(dst) or not same_file(src, dst):
            shutil.copy2(src, dst)


def same_file(a, b):
    sa, sb = os.stat(a), os.stat(b)
    if sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def targets_for(tests):
    t = set()
    for name in tests:
        if name.startswith("integration:"):
            t.update([f"{BUILD}/mdmgw", f"{BUILD}/bench/coa_responder"])
        else:
            t.add(f"{BUILD}/tests/{name}")
    return sorted(t)


# A mutant that deletes a check may leave a parameter or variable unused: that must not stop it
# from building (the product itself is built with these warnings as errors).
MUTANT_CFLAGS = ("-Wno-unused-parameter -Wno-unused-variable -Wno-unused-but-set-variable "
                 "-Wno-unused-function")


def build(targets):
    return sh(["make", "--no-print-directory", "-j2", "FLAVOUR=plain",
               "EXTRA_CFLAGS=" + MUTANT_CFLAGS] + targets, TREE)


def failing_name(test, out):
    """The name of what failed in a test's output, for the report."""
    if test.startswith("integration:"):
        m = re.search(r"^FAIL\s+(\S+)", out, re.M)
        return m.group(1) if m else test
    names = [n for n in re.findall(r"^\[  (?:FAILED|ERROR) +\] (\w+)$", out, re.M)]
    if names:
        return f"{test}:{names[0]}"
    runs = re.findall(r"^\[ RUN +\] (\w+)", out, re.M)
    return f"{test}:{runs[-1]} (crashed)" if runs else f"{test} (crashed)"


def run_test(test, timeout):
    """(passed, what failed, output) for one unit binary or integration case."""
    if test.startswith("integration:"):
        case = test.split(":", 1)[1]
        args = [sys.executable, "tests/integration/run.py", "--binary", f"{BUILD}/mdmgw",
                "--only", case, "--label", "mutate"]
        rc, out = sh(args, TREE, timeout or INTEG_TIMEOUT)
        if rc == 0 and not re.search(r"^ok\s+" + re.escape(case), out, re.M):
            return False, f"{test} (no such case)", out
    else:
        rc, out = sh([f"{BUILD}/tests/{test}"], TREE, timeout or UNIT_TIMEOUT)
    if rc is None:
        return False, f"{test} (timed out)", out
    if rc != 0:
        return False, failing_name(test, out), out
    return True, "", out


def load(paths, only):
    mutants, seen = [], {}
    for p in paths:
        for m in parse_mutfile(p):
            if m.id in seen:
                raise MutFileError(f"{m.origin}: mutant {m.id} is also at {seen[m.id]}")
            seen[m.id] = m.origin
            mutants.append(m)
    if only:
        mutants = [m for m in mutants if any(o in m.id for o in only)]
    return mutants


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[], help="mutant ids containing this")
    ap.add_argument("--list", action="store_true", help="list the mutants and check they apply")
    ap.add_argument("--keep", action="store_true", help="go on after a test fails unmutated")
    ap.add_argument("--timeout", type=int, default=0, help="seconds per test (default 300/900)")
    ap.add_argument("mutfiles", nargs="*")
    a = ap.parse_args()
    paths = a.mutfiles or sorted(glob.glob(os.path.join(ROOT, "tests/mutate/mutants/*.mut")))
    try:
        mutants = load(paths, a.only)
        for m in mutants:  # every mutant must apply to today's code before anything runs
            with open(os.path.join(ROOT, m.file), encoding="utf-8") as f:
                apply_hunks(f.read(), m)
    except (MutFileError, OSError) as e:
        sys.exit(f"mutate: {e}")
    if not mutants:
        sys.exit("mutate: no mutants selected")
    if a.list:
        for m in mutants:
            print(f"{m.id:44} {m.file:28} {' '.join(m.tests)}")
        print(f"mutants: {len(mutants)}, all apply")
        return

    t0 = time.monotonic()
    os.makedirs(TREE, exist_ok=True)
    copy_tree()
    tests = []
    for m in mutants:
        tests += [t for t in m.tests if t not in tests]
    rc, out = build(targets_for(tests))
    if rc != 0:
        sys.exit("mutate: the unmutated tree does not build:\n" + out[-4000:])
    print(f"mutate: {len(mutants)} mutants, {len(tests)} tests; checking the tests pass unmutated",
          flush=True)
    for t in tests:
        ok, what, out = run_test(t, a.timeout)
        if not ok:
            print(f"mutate: {what} fails on the unmutated tree:\n{out[-3000:]}", flush=True)
            if not a.keep:
                sys.exit(1)

    killed, survived, report = 0, [], []
    for m in mutants:
        path = os.path.join(TREE, m.file)
        with open(path, encoding="utf-8") as f:
            original = f.read()
        t1 = time.monotonic()
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(apply_hunks(original, m))
            rc, out = build(targets_for(m.tests))
            if rc != 0:
                # A curated mutant must compile: one that does not tests nothing.
                line = f"BROKEN   {m.id:44} does not build"
                survived.append(m.id)
                print(out[-3000:])
            else:
                by = None
                for t in m.tests:
                    ok, what, _ = run_test(t, a.timeout)
                    if not ok:
                        by = what
                        break
                if by:
                    killed += 1
                    line = f"killed   {m.id:44} by {by}"
                else:
                    survived.append(m.id)
                    line = f"SURVIVED {m.id:44} ({m.why})"
        finally:
            # restored with a new mtime, so the next build recompiles the real file
            with open(path, "w", encoding="utf-8") as f:
                f.write(original)
        line += f"  [{time.monotonic() - t1:.0f}s]"
        print(line, flush=True)
        report.append(line)
    # leave the copy built unmutated for the next run
    build(targets_for(tests))
    with open(os.path.join(SCRATCH, "report.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(report) + "\n")
    print(f"mutate: {time.monotonic() - t0:.0f}s; report in build/mutate/report.txt")
    if survived:
        print("survivors: " + " ".join(survived))
    print(f"mutants killed {killed}/{len(mutants)}")
    sys.exit(0 if killed == len(mutants) else 1)


if __name__ == "__main__":
    main()
