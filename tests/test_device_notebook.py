"""``notebooks/pycograd_device_placement_demo.ipynb`` runs and reaches its results: one pass
split across two array_api_strict devices, gradients equal to a single-device run."""

from __future__ import annotations

import re

import pytest
from notebook_run import execute_notebook, outputs, printed


@pytest.mark.slow
def test_device_notebook_runs_and_matches_one_device():
    cells = execute_notebook("pycograd_device_placement_demo.ipynb", needs=("array_api_strict",))
    text = printed(cells)
    errors = [out for out in outputs(cells) if out.get("output_type") == "error"]
    assert not errors, errors
    split = re.search(r"loss split over two devices: (\S+)", text).group(1)
    one = re.search(r"loss on numpy alone: +(\S+)", text).group(1)
    assert abs(float(split) - float(one)) < 1e-12
    assert float(re.search(r"max \|grad split - grad one device\| = (\S+)", text).group(1)) \
        < 1e-12
    assert "'array_api_strict:device1' and 'array_api_strict:device2'" in text
    assert "on array_api_strict:device2" in text and "== numpy: True" in text
    assert "no GPU here" in text or "cupy: == numpy: True" in text
