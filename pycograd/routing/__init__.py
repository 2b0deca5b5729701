"""The routing layer: what numpy's protocols cannot reach (``math.*`` on traced scalars,
``np.array([...traced...])``, ``np.r_``), woven with pyccolo so that every transform sees it.

It sits above ``core`` / ``ops`` and beside ``numpy_api`` (whose routes it installs), and below
``transforms``: each transform calls ``routed(f)`` on the user's function. See
``pycograd.routing.transparent`` for how and at what cost.
"""
