"""``python -m pycograd run model.py [args...]``: run a file written in the DSL.

With no arguments it prints its help and exits 0, so a newcomer who tries the bare command
learns what it offers instead of reading a usage error."""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pycograd",
        description="pycograd: exact gradients of ordinary numpy code.",
        epilog="The demos: python -m pycograd.examples. In IPython or Jupyter, "
               "%load_ext pycograd turns on the params{...} / |> DSL.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    run = sub.add_parser("run", help="run a .py file that uses params{...} blocks and |> pipes")
    run.add_argument("file")
    run.add_argument("args", nargs=argparse.REMAINDER, help="passed to the file as sys.argv[1:]")
    ns = parser.parse_args(argv)
    if ns.command is None:
        parser.print_help()
        return 0
    from pycograd.dsl.script import run_file, user_traceback

    if not os.path.isfile(ns.file):
        parser.error(f"run: no such file: {ns.file}")
    try:
        run_file(ns.file, ns.args)
    except Exception as exc:  # what plain Python prints, at the user's lines
        sys.stderr.write(user_traceback(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
