"""Where the tests find the real DS sample definitions.

The project's reference samples live beside the repository (``../shared/samples``, see its
INDEX.md) and may hold more than this copy; a clone on its own (a fresh CI machine) has only the
copy in ``tests/ds_samples/``. ``PORPOISE_SAMPLES_DIR`` names another directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _samples_dir() -> Path:
    if named := os.environ.get("PORPOISE_SAMPLES_DIR"):
        return Path(named)
    shared = REPO.parent / "shared" / "samples"
    return shared if shared.is_dir() else REPO / "tests" / "ds_samples"


SAMPLES = _samples_dir()
