"""Moved to ``pycograd.routing.scalar_math`` (the routing layer); this name stays an alias of that
module so that older imports (and monkeypatches) keep working."""

import sys

from pycograd.routing import scalar_math as _moved

sys.modules[__name__] = _moved
