#!/usr/bin/env python3
"""make mutants: apply each hand-picked mutation (tests/mutants/mutations.toml) to a scratch
copy of the tree and run the test suites against it until one fails (caught) or all pass
(survived). Not part of `make test`. Writes the score into TESTING.md between markers.

    python3 scripts/mutants.py [--only ID[,ID...]] [--suites rust,c,...] [--no-write]
"""
import argparse
import os
import shutil
import subprocess
import sys
import time
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRATCH = os.path.join(ROOT, "build", "mutants", "tree")
SUITES = {
    "rust": ["cargo", "test", "--workspace", "--no-fail-fast", "-q"],
    "c": ["make", "-s", "test-c"],
    "store": ["make", "-s", "test-store"],
    "c-valgrind": ["make", "-s", "test-c-valgrind"],
    "python": ["make", "-s", "test-python"],
    "csharp": ["make", "-s", "test-csharp"],
}
ORDER = ["rust", "c", "store", "python", "csharp", "c-valgrind"]
SUITE_TIMEOUT = 900  # a hang is a catch too, but not a fast one
BEGIN, END = "<!-- mutants:begin -->", "<!-- mutants:end -->"


EXCLUDED = {"target", "build", ".git", os.path.join("fuzz", "target")}


def tree(top):
    """{relative path: (kind, link target)} of a tree, EXCLUDED pruned (directories, files or
    links of those names alike); kinds: dir, file, link (anything else is skipped)."""
    out = {}
    for here, dirs, files in os.walk(top):
        rel_here = os.path.relpath(here, top)
        keep = []
        for name in dirs + files:
            rel = os.path.normpath(os.path.join(rel_here, name))
            path = os.path.join(here, name)
            if rel in EXCLUDED:
                continue
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir", None)
                keep.append(name)
            elif os.path.isfile(path):
                out[rel] = ("file", None)
        dirs[:] = [d for d in dirs if d in keep]
    return out


def sync_scratch():
    """Scratch copy of the work tree; its target/ and build/ survive, so rebuilds are incremental.
    Plain Python (a fresh machine has no rsync). A file is rewritten when its bytes differ, and
    then gets the time of the copy as its mtime, so cargo rebuilds what changed (the file a
    previous mutation changed included, whichever crate the next one is in); its mode follows
    the tree's. Whatever is gone from the tree, or changed kind, is removed from the copy first."""
    os.makedirs(SCRATCH, exist_ok=True)
    wanted, have = tree(ROOT), tree(SCRATCH)
    for rel in sorted(have, key=lambda r: r.count(os.sep), reverse=True):
        if wanted.get(rel) != have[rel]:  # gone, another kind, or a link elsewhere
            path = os.path.join(SCRATCH, rel)
            if have[rel][0] == "dir":
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.lexists(path):
                os.remove(path)
    for rel, (kind, target) in sorted(wanted.items()):
        src, dst = os.path.join(ROOT, rel), os.path.join(SCRATCH, rel)
        if kind == "dir":
            os.makedirs(dst, exist_ok=True)
        elif kind == "link":
            if not os.path.lexists(dst):
                os.symlink(target, dst)
        else:
            with open(src, "rb") as f:
                data = f.read()
            try:
                with open(dst, "rb") as f:
                    same = f.read() == data
            except FileNotFoundError:
                same = False
            if not same:
                with open(dst, "wb") as f:
                    f.write(data)
            if os.stat(src).st_mode & 0o7777 != os.stat(dst).st_mode & 0o7777:
                shutil.copymode(src, dst)


def apply(m):
    path = os.path.join(SCRATCH, m["file"])
    text = open(path, encoding="utf-8").read()
    n = text.count(m["find"])
    if n != 1:
        raise SystemExit(f"mutation {m['id']}: `find` occurs {n} times in {m['file']} (must be 1): update mutations.toml")
    open(path, "w", encoding="utf-8").write(text.replace(m["find"], m["replace"]))


def failing_tests(output):
    """Names of the failing tests in a suite's output (cargo's '--- FAILED', the C suite's
    'FAIL name', pytest's 'FAILED path::name', the C# runner's 'FAIL name'); compile errors."""
    names = []
    for line in output.splitlines():
        line = line.strip()
        if line.endswith("--- FAILED"):
            names.append(line.split()[0])
        elif line.startswith("FAILED "):
            names.append(line.split()[1].split("::")[-1])
        elif line.startswith("FAIL ") and "(" not in line.split()[1]:
            names.append(line.split()[1])
        elif line.startswith("error[E") or line.startswith("error: could not compile"):
            names.append("COMPILE ERROR")
    seen = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return seen


def run_suite(name, log):
    t0 = time.monotonic()
    try:
        r = subprocess.run(SUITES[name], cwd=SCRATCH, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=SUITE_TIMEOUT, text=True)
        log.write(r.stdout)
        ok = r.returncode == 0
        tests = failing_tests(r.stdout)
        how = "passed" if ok else "failed: " + (", ".join(tests[:6]) or f"exit {r.returncode}")
    except subprocess.TimeoutExpired as e:
        log.write(e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or ""))
        ok, how = False, f"timed out after {SUITE_TIMEOUT} s"
    return ok, how, time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--suites", default=",".join(ORDER))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with open(os.path.join(ROOT, "tests", "mutants", "mutations.toml"), "rb") as f:
        mutations = tomllib.load(f)["mutation"]
    only = {x for x in args.only.split(",") if x}
    allowed = [s for s in args.suites.split(",") if s]
    if only:
        mutations = [m for m in mutations if m["id"] in only]
    logdir = os.path.join(ROOT, "build", "mutants", "logs")
    os.makedirs(logdir, exist_ok=True)
    rows, survived = [], []
    t_all = time.monotonic()
    for m in mutations:
        sync_scratch()
        apply(m)
        order = [s for s in m.get("suites", []) if s in allowed]
        order += [s for s in ORDER if s in allowed and s not in order]
        caught_by, tried = None, []
        with open(os.path.join(logdir, m["id"] + ".log"), "w") as log:
            for s in order:
                ok, how, secs = run_suite(s, log)
                tried.append(f"{s} {how} ({secs:.0f} s)")
                print(f"  {m['id']}: {s} {how} ({secs:.0f} s)", flush=True)
                if not ok:
                    caught_by = s
                    break
        compile_error = any("COMPILE ERROR" in t for t in tried)
        if compile_error:
            raise SystemExit(f"mutation {m['id']} does not compile: fix mutations.toml (see {log.name})")
        verdict = f"caught by {caught_by}" if caught_by else "SURVIVED"
        if not caught_by:
            survived.append(m["id"])
        print(f"{m['id']}: {verdict}", flush=True)
        rows.append((m["id"], m["guarantee"], verdict, "; ".join(tried)))
    sync_scratch()  # leave the scratch copy unmutated
    total = time.monotonic() - t_all
    caught = len(rows) - len(survived)
    summary = f"{caught} of {len(rows)} mutations caught, {len(survived)} survived ({total / 60:.1f} min)"
    print(summary)
    table = [BEGIN, "", f"Last run: `make mutants` on {time.strftime('%Y-%m-%d')}: **{summary}**.", "",
             "| mutation | guarantee | result | suites run |", "| --- | --- | --- | --- |"]
    table += [f"| `{i}` | {g} | {v} | {t} |" for i, g, v, t in rows]
    table += ["", END]
    if not args.no_write and not only:
        path = os.path.join(ROOT, "TESTING.md")
        text = open(path, encoding="utf-8").read()
        a, b = text.index(BEGIN), text.index(END) + len(END)
        open(path, "w", encoding="utf-8").write(text[:a] + "\n".join(table) + text[b:])
    else:
        print("\n".join(table))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
