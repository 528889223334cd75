#!/usr/bin/env python3
"""Replays each fuzz target over its corpus: one test per corpus file.

usage: replay.py [--summary FILE] BIN...

For build/fuzz/fuzz_X the corpus is tests/fuzz/corpus/fuzz_X/. A libFuzzer binary given file
paths runs each file once and exits non-zero at the first one that crashes, so the files are
run together first and, only when that fails, one by one to count and name the failing ones.
Prints "fuzz-replay: <bin>: N passed, M failed" per binary and a closing total, appends
"fuzz-replay <passed> <failed>" to the summary file, and exits 1 on any failure.
"""
import argparse
import os
import subprocess
import sys
import tempfile

CORPUS_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
BATCH = 200        # files per run: keeps the command line short for grown corpora
TIMEOUT = 600      # seconds for one run of the binary
LIBFUZZER_ARGS = ["-timeout=25", "-rss_limit_mb=2048"]


def run(binary, files):
    """Runs the binary over files; returns (ok, output)."""
    # Any crash or timeout artifact libFuzzer writes goes to a scratch directory, not the cwd.
    with tempfile.TemporaryDirectory(prefix="fuzz-replay-") as art:
        return run_in(binary, files, art)


def run_in(binary, files, art):
    args = [binary] + LIBFUZZER_ARGS + [f"-artifact_prefix={art}/"] + files
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return False, f"timed out after {TIMEOUT}s\n"
    except OSError as e:
        return False, f"cannot run: {e}\n"
    return p.returncode == 0, p.stdout.decode("utf-8", "replace")


def corpus_files(name):
    d = os.path.join(CORPUS_ROOT, name)
    if not os.path.isdir(d):
        return None
    return sorted(os.path.join(d, f) for f in os.listdir(d)
                  if os.path.isfile(os.path.join(d, f)) and not f.startswith("."))


def replay(binary):
    """Returns (passed, failed) for one binary, printing what failed."""
    name = os.path.basename(binary)
    files = corpus_files(name)
    if not os.access(binary, os.X_OK):
        print(f"fuzz-replay: {binary}: not an executable")
        return 0, 1
    if not files:
        # A target with nothing to replay tests nothing: say so loudly rather than pass.
        print(f"fuzz-replay: {binary}: no corpus files in {os.path.join(CORPUS_ROOT, name)}")
        return 0, 1
    passed = failed = 0
    for i in range(0, len(files), BATCH):
        chunk = files[i:i + BATCH]
        ok, _ = run(binary, chunk)
        if ok:
            passed += len(chunk)
            continue
        for f in chunk:
            ok, out = run(binary, [f])
            if ok:
                passed += 1
                continue
            failed += 1
            tail = "\n".join(out.rstrip().splitlines()[-25:])
            print(f"fuzz-replay: {binary}: FAILED on {f}\n{tail}")
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description="Replay fuzz corpora through libFuzzer binaries.")
    ap.add_argument("--summary", help="append 'fuzz-replay <passed> <failed>' to this file")
    ap.add_argument("binaries", nargs="*")
    a = ap.parse_args()
    passed = failed = 0
    if not a.binaries:
        print("fuzz-replay: no fuzz binaries given")
        failed = 1
    for b in a.binaries:
        p, f = replay(b)
        print(f"fuzz-replay: {b}: {p} passed, {f} failed")
        passed += p
        failed += f
    print(f"fuzz-replay: {passed} passed, {failed} failed")
    if a.summary:
        with open(a.summary, "a") as fh:
            fh.write(f"fuzz-replay {passed} {failed}\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
