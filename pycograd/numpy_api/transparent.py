"""Moved to ``pycograd.routing.transparent`` (the routing layer); this name stays an alias of that
module so that older imports (and monkeypatches) keep working."""

import sys

from pycograd.routing import transparent as _moved

sys.modules[__name__] = _moved
