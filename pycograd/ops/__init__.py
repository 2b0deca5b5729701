"""Primitives by family. Importing this package registers every primitive."""

from pycograd.ops import (  # noqa: F401
    control,
    elementwise,
    indexing,
    linalg,
    reductions,
    shape,
    special,
)
