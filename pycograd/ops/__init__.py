"""Primitives by family. Importing this package registers every primitive."""

from pycograd.ops import (  # noqa: F401
    complex,
    control,
    decompositions,
    elementwise,
    fft,
    indexing,
    linalg,
    reductions,
    scans,
    shape,
    signal,
    special,
)
