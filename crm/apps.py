from __future__ import annotations

from django.apps import AppConfig
from django.core.signals import request_finished


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Market"

    def ready(self) -> None:
        from crm import signals  # noqa: F401 - connects the audit receivers
        from crm.collector import settle_after_request

        # Only a process that answers requests sends it: workers and commands are left alone.
        request_finished.connect(settle_after_request, dispatch_uid="crm.collector.settle")
