from __future__ import annotations

from django.apps import AppConfig


class PartnersConfig(AppConfig):
    name = "partners"
    verbose_name = "Partners"

    def ready(self) -> None:
        from channels.services import coverage_listen
        from partners.coverage_kinds import coverage_kinds_refresh

        # Every coverage change refreshes its accounts' stored kinds in the same transaction.
        coverage_listen(coverage_kinds_refresh)
