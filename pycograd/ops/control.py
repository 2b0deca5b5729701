"""Selection: ``where`` chooses per element; the condition carries no gradient."""

from __future__ import annotations

import numpy as np

from pycograd.core.primitive import primitive
from pycograd.ops.broadcasting import unbroadcast
from pycograd.ops.complex import match

select_p = primitive(
    "where", np.where, None,
    lambda g, ans, c, x, y: unbroadcast(match(np.where(c, g, 0), x), np.shape(x)),
    lambda g, ans, c, x, y: unbroadcast(match(np.where(c, 0, g), y), np.shape(y)),
    family="elementwise", saves=(0,),  # the condition; x and y only for their shapes
)
