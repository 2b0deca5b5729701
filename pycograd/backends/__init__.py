"""Where arrays live and what a graph becomes elsewhere.

``arrays`` holds the array devices (numpy by default; CuPy, torch through array-api-compat,
and array_api_strict for tests): a registry of array namespaces, the placed-array tracer
that runs each primitive on its array's own library, and the differentiable transfers.
It sits low in the layers (the core and ``ops`` below it), since random keys, numpy's API
and the transforms make values on the active device.
"""
