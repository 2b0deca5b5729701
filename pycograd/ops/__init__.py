"""Primitives by family. Importing this package registers every primitive."""

from pycograd.ops import control, elementwise, indexing, linalg, reductions, shape  # noqa: F401
