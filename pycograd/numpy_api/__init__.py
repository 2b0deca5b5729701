"""numpy as the language: np.* functions, ufuncs and ndarray methods on traced values."""

from pycograd.numpy_api import methods  # noqa: F401  (installs the tracer surface)
