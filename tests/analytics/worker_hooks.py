"""Loaded by the test worker: when METRICS_PAUSE_FILE names an existing file, a week's write
stops half way (segment rows inserted, partner rows not, transaction open) and waits there, so
a test can kill the worker mid-run. It writes `<file>.reached` when it gets there."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from analytics.models import PartnerSnapshot

_original_bulk_create = PartnerSnapshot.objects.bulk_create


def _paused_bulk_create(*args: Any, **kwargs: Any) -> Any:
    pause_file = os.environ.get("METRICS_PAUSE_FILE", "")
    if pause_file and Path(pause_file).exists():
        Path(f"{pause_file}.reached").touch()
        time.sleep(120)
    return _original_bulk_create(*args, **kwargs)


PartnerSnapshot.objects.bulk_create = _paused_bulk_create  # type: ignore[method-assign]
