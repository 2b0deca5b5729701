"""Bundled demos: small models written in plain numpy, trained with pycograd and checked
against finite differences. Run them with ``python -m pycograd.examples``."""

from pycograd.examples.runner import DEMOS, DemoResult, main, run_demo

__all__ = ["DEMOS", "DemoResult", "main", "run_demo"]
