"""Make ``tests.support.*`` importable however pytest is launched.

``python -m pytest`` (what ``make test`` runs) already has the repository root on ``sys.path``;
plain ``pytest`` does not, so add it here. ``tests`` and ``tests/support`` have no
``__init__.py``: they are namespace packages, imported as ``tests.support.<module>``.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
