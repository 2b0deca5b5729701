"""Primitives by family. Importing this package registers every primitive."""

from pycograd.ops import (  # noqa: F401
    complex,
    control,
    decompositions,
    elementwise,
    fft,
    fused,
    gates,
    indexing,
    integrate,
    linalg,
    matrix_functions,
    reductions,
    scans,
    shape,
    signal,
    solves,
    special,
)
