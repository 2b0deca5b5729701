"""Parameters: ``ParamDict`` (the plain-Python ``weights``), the ``frozen`` / ``tied`` /
``buffer`` markers, and the ambient binding of weight names."""

from pycograd.params.markers import buffer, frozen, tied
from pycograd.params.paramdict import Param, ParamDict
from pycograd.params.serialize import ParamLoadError
from pycograd.routing.ambient import Group

__all__ = ["ParamDict", "Param", "Group", "frozen", "tied", "buffer", "ParamLoadError"]
