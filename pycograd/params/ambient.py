"""Moved to ``pycograd.routing.ambient`` (the binding of weights read by bare name sits below
the transforms); this name stays an alias of that module so that older imports (and
monkeypatches) keep working."""

import sys

from pycograd.routing import ambient as _moved

sys.modules[__name__] = _moved
