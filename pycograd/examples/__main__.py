"""``python -m pycograd.examples``: train each bundled demo and gradient-check it."""

from pycograd.examples.runner import main

raise SystemExit(main())
