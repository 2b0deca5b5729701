"""numpy as the language: np.* functions, ufuncs and ndarray methods on traced values."""

from pycograd.numpy_api import (  # noqa: F401,E402  (np.* families beyond the core table)
    complex,
    construction,
    einops_backend,  # noqa: F401  (einops on traced values, when einops is installed)
    fft,
    interpolation,
    linalg,
    methods,  # noqa: F401  (installs the tracer surface)
    nan_functions,
    polynomial,
    selection,
    signal,
    statistics,
)
