"""Run HIPS autograd 1.9.1's own test suite on plain numpy through pycograd.

autograd's tests import ``autograd.numpy`` / ``autograd.grad``...; ``hips_shim/autograd`` is a
stand-in package that makes ``autograd.numpy`` numpy itself and maps the differential
operators to pycograd's (see its docstring). The four test files about autograd's
internals (``test_vspaces``, ``test_wrappers``, ``test_tests``, ``test_builtins``: its boxes,
vector spaces and wrapper names) are left out; the other 588 tests are the passable ones.

Fetch the sdist once (its tests are not in the wheel), then run:

    pip download --no-deps --no-binary :all: autograd==1.9.1 -d /tmp/ag
    tar xzf /tmp/ag/autograd-1.9.1.tar.gz -C /tmp/ag
    python benchmarks/hips_parity.py /tmp/ag/autograd-1.9.1 [-v] [-k EXPR]

It prints the pass count and the failing tests. Needs pytest and scipy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

LEFT_OUT = ("test_vspaces.py", "test_wrappers.py", "test_tests.py", "test_builtins.py")
HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sdist", type=Path, help="the unpacked autograd-1.9.1 sdist")
    ap.add_argument("-v", "--verbose", action="store_true", help="show each failure's error")
    ap.add_argument("-k", default=None, help="pytest -k expression")
    args = ap.parse_args()
    tests = args.sdist / "tests"
    if not tests.is_dir():
        ap.error(f"{tests} not found: pass the unpacked sdist's folder")
    files = sorted(str(p) for p in tests.glob("test_*.py") if p.name not in LEFT_OUT)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE / "hips_shim"), str(tests), str(HERE.parent),
                                         env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", os.devnull,
           "--rootdir", str(tests), "-rfE", "--tb=line" if args.verbose else "--tb=no",
           "-W", "ignore", *files]
    if args.k:
        cmd += ["-k", args.k]
    done = subprocess.run(cmd, env=env, cwd=str(tests), capture_output=True, text=True)
    out = done.stdout + done.stderr
    failed = sorted({line.split(" ")[1] for line in out.splitlines()
                     if line.startswith(("FAILED ", "ERROR "))})
    if args.verbose:
        print(out)
    else:
        print("\n".join(f"  {t}" for t in failed))
    summary = [line for line in out.splitlines()
               if line.endswith("s") and (" passed" in line or " failed" in line)]
    print(summary[-1] if summary else out[-2000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
