"""Run every ``bench_*.py`` in this folder, one after the other, in fresh processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).resolve().parent
    status = 0
    for script in sorted(here.glob("bench_*.py")):
        status |= subprocess.run([sys.executable, str(script), *argv]).returncode
        print()
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
