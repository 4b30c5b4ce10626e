from __future__ import annotations

from django.apps import AppConfig


class CrmConfig(AppConfig):
    name = "crm"
    verbose_name = "Market"

    def ready(self) -> None:
        from crm import signals  # noqa: F401 - connects the audit receivers
