"""Primitives by family. Importing this package registers every primitive."""

from pycograd.ops import (  # noqa: F401
    control,
    decompositions,
    elementwise,
    indexing,
    linalg,
    reductions,
    scans,
    shape,
    special,
)
