"""Print pip constraints pinning each dependency to the oldest release pyproject allows.

Reads ``[project].dependencies`` and the test extra's optional libraries that pycograd
integrates with (scipy, einops); ``numpy>=2.4`` becomes ``numpy==2.4``. Used by the
minimum-versions job of ``.ci/run``: ``pip install -c <(python .ci/min_versions.py) ...``.
"""

from __future__ import annotations

import pathlib
import re
import tomllib

INTEGRATIONS = {"scipy", "einops"}

project = tomllib.loads((pathlib.Path(__file__).parent.parent / "pyproject.toml").read_text())
specs = list(project["project"]["dependencies"]) + [
    s for s in project["project"]["optional-dependencies"]["test"]
    if re.split(r"[<>=!~ \[]", s, maxsplit=1)[0].lower() in INTEGRATIONS]
for spec in specs:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][0-9.]*)", spec)
    if m is None:
        raise SystemExit(f"min_versions: {spec!r} has no '>=' floor")
    print(f"{m.group(1)}=={m.group(2)}")
