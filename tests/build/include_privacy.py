#!/usr/bin/env python3
"""The build refuses an include the module graph does not allow.

usage: include_privacy.py BUILD_DIR SOURCE_DIR

Takes the real compile command of one source file of a target from
BUILD_DIR/compile_commands.json (same compiler, same -I/-isystem flags, same
defines), swaps the source for a one-line probe translation unit that includes
one header, and preprocesses it (-E: include resolution is all that is
checked, so each probe takes a few milliseconds). Each case states whether the
include must resolve; a refused one must fail with the compiler's
"No such file" / "file not found" error, not for another reason. Exits 1 if
any case goes the other way (cmake/walferry_includes.cmake is the rule).
"""
import json
import os
import shlex
import subprocess
import sys
import tempfile

# (whose flags: a source directory relative to SOURCE_DIR, or target:NAME for
# any source of that target, e.g. a unity-build file), header, must resolve?, why
CASES = [
    ("archive", "archive/archive_internal.h", True, "a module sees its own internals"),
    ("archive", "store/store.h", True, "a module sees a linked module's public header"),
    ("archive", "compress/pipeline_internal.h", False, "a linked module's internal header is private"),
    ("transport", "store/store.h", True, "transport links store"),
    ("transport", "archive/archive.h", False, "transport does not link archive"),
    ("transport", "tests/support/fault_fs.h", False, "product code does not see tests/"),
    ("archive", "archive/../transport/conn_internal.h", False, "no way around the tree through .."),
    ("agent", "transport/net.h", True, "agent links transport"),
    ("agent", "walfmt/wal_names.h", False, "walfmt reaches agent only through store's PRIVATE_DEPS"),
    ("core", "compress/codec.h", False, "core links no module"),
    ("target:walferry", "cli/commands.h", True, "the binary sees cli/"),
    ("target:walferry", "transport/conn_internal.h", False, "the binary does not see transport's internals"),
    ("target:archive_tests", "archive/archive_internal.h", True, "tests/archive/ reaches archive's internals"),
    ("target:archive_tests", "tests/support/fault_fs.h", True, "tests see tests/support/"),
    ("target:pg_tests", "archive/archive.h", True, "tests see every module's public headers"),
    ("target:pg_tests", "archive/archive_internal.h", False, "tests/pg/ does not reach archive's internals"),
    ("target:pg_tests", "pg/archive_ops_internal.h", True, "tests/pg/ reaches pg's internals"),
]

NOT_FOUND = ("No such file or directory", "file not found")


def output_of(e, argv):
    if "output" in e:
        return e["output"]
    return argv[argv.index("-o") + 1] if "-o" in argv else ""


def command_for(entries, src_dir, where):
    """The compile command (argv, cwd, file) of the first .cc directly in the
    source directory `where`, or of any source of the target `target:NAME`."""
    for e in entries:
        argv = e["arguments"] if "arguments" in e else shlex.split(e["command"])
        f = os.path.normpath(os.path.join(e["directory"], e["file"]))
        if where.startswith("target:"):
            hit = f"CMakeFiles/{where[len('target:'):]}.dir/" in output_of(e, argv)
        else:
            hit = os.path.dirname(f) == os.path.join(src_dir, where) and f.endswith(".cc")
        if hit:
            return argv, e["directory"], f


def probe_argv(argv, cwd, source, probe):
    """argv with the source replaced by probe, preprocessing to /dev/null."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-c", "-MD", "-MMD") or os.path.normpath(os.path.join(cwd, a)) == source:
            continue
        out.append(a)
    return out + ["-E", "-o", os.devnull, probe]


def main():
    build_dir, src_dir = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    db = os.path.join(build_dir, "compile_commands.json")
    with open(db) as f:
        entries = json.load(f)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="include_privacy.") as tmp:
        probe = os.path.join(tmp, "probe.cc")  # outside the tree: no same-directory lookups
        for n, (subdir, header, ok, why) in enumerate(CASES):
            found = command_for(entries, src_dir, subdir)
            if found is None:
                print(f"FAIL: no compile command for a {subdir}/*.cc in {db}")
                failures += 1
                continue
            argv, cwd, source = found
            with open(probe, "w") as f:
                f.write(f'#include "{header}"\n')
            r = subprocess.run(probe_argv(argv, cwd, source, probe), cwd=cwd,
                               capture_output=True, text=True)
            refused = r.returncode != 0
            for_the_right_reason = any(s in r.stderr for s in NOT_FOUND)
            if ok and not refused:
                verdict = "ok"
            elif not ok and refused and for_the_right_reason:
                verdict = "ok"
            else:
                verdict = "FAIL"
                failures += 1
            expect = "resolves" if ok else "refused"
            print(f"{verdict}: {subdir}: #include \"{header}\" {expect} ({why})")
            if verdict == "FAIL":
                print("  " + (r.stderr.strip().splitlines() or ["(it resolved)"])[0])
    print(f"{len(CASES) - failures} of {len(CASES)} include cases as the graph says")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
