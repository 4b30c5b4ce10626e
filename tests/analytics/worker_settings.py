"""Settings for the Celery worker that the worker tests start: the test settings, with a short
week lock and a short broker visibility timeout so a killed run is redelivered within seconds."""

from __future__ import annotations

from crm.settings_test import *  # noqa: F403
from crm.settings_test import CELERY_BROKER_TRANSPORT_OPTIONS

METRICS_LOCK_SECONDS = 5
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "visibility_timeout": 5,
    # Sweep for unacknowledged messages every second instead of every ~100 s.
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
CELERY_IMPORTS = ["tests.analytics.worker_hooks"]
