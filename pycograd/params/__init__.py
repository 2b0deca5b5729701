"""Parameters: ``ParamDict`` (the plain-Python ``weights``), the ``frozen`` / ``tied`` /
``buffer`` markers, and the ambient binding of weight names."""

from pycograd.params.ambient import Group
from pycograd.params.markers import buffer, frozen, tied
from pycograd.params.paramdict import Param, ParamDict
from pycograd.params.serialize import ParamLoadError

__all__ = ["ParamDict", "Param", "Group", "frozen", "tied", "buffer", "ParamLoadError"]
