from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from partners.demo import demo_reset, demo_seed


class Command(BaseCommand):
    help = (
        "Create realistic, deterministic demo data and the demo users "
        "(manager, rep, exec, partner-a, partner-b)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--accounts", type=int, default=5000, help="Accounts in the market (default 5000)."
        )
        parser.add_argument(
            "--password", default="", help="Password for every demo user (default: a random one)."
        )
        parser.add_argument(
            "--seed", type=int, default=20261122, help="Random seed (same seed, same market)."
        )
        parser.add_argument(
            "--reset", action="store_true", help="Delete the existing market first."
        )
        parser.add_argument(
            "--logins-file",
            default="",
            help="Also write the demo logins to this file (for make demo).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["accounts"] < 1:
            raise CommandError("--accounts must be at least 1")
        password = options["password"] or secrets.token_urlsafe(12)
        started = time.monotonic()
        if options["reset"]:
            demo_reset()
        result = demo_seed(
            accounts=options["accounts"],
            password=password,
            seed=options["seed"],
            progress=lambda message: self.stdout.write(f"  {message}"),
        )
        if result.created:
            self.stdout.write(f"Demo market created in {time.monotonic() - started:.1f} s.")
        else:
            self.stdout.write(
                f"Demo market already present ({result.accounts} accounts); kept it "
                "(use --reset to recreate). Demo users refreshed."
            )
        lines = [
            "",
            "Demo logins at http://127.0.0.1:8000/accounts/login/",
            f"  password for every demo user: {password}",
            *(
                f"  {username:<10} {role:<14} lands on {home}"
                for username, role, home in result.logins
            ),
        ]
        self.stdout.write("\n".join(lines))
        if options["logins_file"]:
            path = Path(options["logins_file"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            path.chmod(0o600)
