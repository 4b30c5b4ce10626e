"""Send one week's leadership digest now (the Monday task does the same for last week)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.digest import DigestAlreadySent, DigestNotReady, digest_send


class Command(BaseCommand):
    help = (
        "Queue the weekly digest of --week to every active executive with an e-mail address. "
        "Refuses a week without a final snapshot and a week already sent; --to sends a copy to "
        "the given addresses instead, which may repeat and does not count as sent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--week", required=True, help='An ISO week, e.g. "2026-W46".')
        parser.add_argument("--to", action="append", help="Send only to this address (repeatable).")

    def handle(self, *args: Any, **options: Any) -> None:
        week = options["week"]
        try:
            emails = digest_send(week=week, to=options["to"])
        except (ValueError, DigestNotReady, DigestAlreadySent) as error:
            raise CommandError(str(error)) from None
        recipients = sorted({address for email in emails for address in email.to})
        if not recipients:
            self.stdout.write(f"digest {week}: nobody to send to (no active executive with e-mail)")
            return
        self.stdout.write(f"digest {week}: queued for {', '.join(recipients)}")
