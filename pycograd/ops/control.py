"""Selection: ``where`` chooses per element; the condition carries no gradient."""

from __future__ import annotations

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.ops.broadcasting import unbroadcast

select_p = primitive(
    "where", np.where, None,
    lambda g, ans, c, x, y: unbroadcast(np.where(c, g, 0), np.shape(x)),
    lambda g, ans, c, x, y: unbroadcast(np.where(c, 0, g), np.shape(y)),
    family="elementwise",
)
