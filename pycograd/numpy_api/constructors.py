"""Moved to ``pycograd.routing.constructors`` (the routing layer); this name stays an alias of that
module so that older imports (and monkeypatches) keep working."""

import sys

from pycograd.routing import constructors as _moved

sys.modules[__name__] = _moved
