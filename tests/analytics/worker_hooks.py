"""Loaded by the test worker: when METRICS_PAUSE_FILE names an existing file, a week's write
stops half way (segment rows written, partner rows not, transaction open) and waits there, so
a test can kill the worker mid-run. It writes `<file>.reached` when it gets there."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from analytics import writes
from analytics.models import PartnerSnapshot

_original_replace = writes.replace_week_rows


def _paused_replace(model: Any, week: str, rows: Any, **options: Any) -> None:
    pause_file = os.environ.get("METRICS_PAUSE_FILE", "")
    if model is PartnerSnapshot and pause_file and Path(pause_file).exists():
        Path(f"{pause_file}.reached").touch()
        time.sleep(120)
    _original_replace(model, week, rows, **options)


# The week's tables are written one by one through it (`writes.replace_week_tables`).
writes.replace_week_rows = _paused_replace  # type: ignore[assignment]
