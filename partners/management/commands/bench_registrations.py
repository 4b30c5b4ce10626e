"""Operator job: time deal registration on a large synthetic market.

Seeds the market through the fast import path (as bench_lists does) and a history of
registrations, then, in-process with real tokens and sessions, times a partner user submitting
registrations through the API (matching and every conflict check included) and a sales manager
opening the registration queue, and prints server-side p50/p95.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from argparse import ArgumentParser
from datetime import datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone

from crm.models import Account, Region, SizeBand, Vertical
from crm.names import company_name_key
from crm.roles import Role
from crm.services import api_token_issue
from partners.management.commands.bench_import import market_generate
from partners.market_import import market_import
from partners.models import Partner, PartnerKind, PartnerUser
from partners.registration_models import ConflictCode, DealRegistration, RegistrationStatus

HISTORY_STATUSES = [
    (RegistrationStatus.SUBMITTED, 10),
    (RegistrationStatus.APPROVED, 30),
    (RegistrationStatus.REJECTED, 10),
    (RegistrationStatus.WON, 20),
    (RegistrationStatus.LOST, 10),
    (RegistrationStatus.EXPIRED, 15),
    (RegistrationStatus.WITHDRAWN, 5),
]


class Command(BaseCommand):
    help = (
        "Time deal registration (API submit, the managers' queue) on a synthetic market of N "
        "accounts; prints p50/p95 server time."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--accounts", type=int, default=1_000_000)
        parser.add_argument(
            "--history", type=int, default=20_000, help="Registrations seeded first (20000)."
        )
        parser.add_argument(
            "--requests", type=int, default=100, help="Timed requests of each kind (100)."
        )
        parser.add_argument("--reuse", action="store_true", help="Use the market already loaded.")
        parser.add_argument("--force", action="store_true", help="Load even if accounts exist.")

    def handle(self, *args: Any, **options: Any) -> None:
        existing = Account.objects.count()
        if options["reuse"]:
            if existing == 0:
                raise CommandError("--reuse: the database holds no accounts to benchmark")
        elif existing and not options["force"]:
            raise CommandError(
                f"the database already holds {existing:,} accounts; point DATABASE_URL at an "
                "empty benchmark database, or pass --reuse to benchmark what is there"
            )
        else:
            self._load(options["accounts"])
        rng = random.Random(17)
        partner = (
            Partner.objects.filter(channel_kind=PartnerKind.PARTNER, agreements__isnull=False)
            .order_by("external_id")
            .first()
        )
        if partner is None:
            raise CommandError("no partner with an agreement; load a market with coverage")
        if not DealRegistration.objects.exists():
            started = time.perf_counter()
            self._history(rng, options["history"])
            self.stdout.write(
                f"{options['history']:,} registrations seeded in "
                f"{time.perf_counter() - started:.1f} s"
            )
            self._analyze()
        accounts = Account.objects.count()
        partner_client = self._client(self._partner_user(partner), token=True)
        manager_client = self._client(self._manager(), token=False)
        highest = Account.objects.order_by("-id").values_list("id", flat=True).first() or 1
        self.stdout.write(f"{connection.vendor}, {accounts:,} accounts, warm caches")
        with override_settings(
            REGISTRATION_SUBMISSIONS_PER_HOUR=10**9,
            EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        ):
            submit = self._time(
                "submit (API)",
                options["requests"],
                lambda: partner_client.post(
                    "/api/v1/deal-registrations/",
                    self._payload(rng, highest),
                    content_type="application/json",
                ),
                expect=201,
            )
            queue = max(
                self._time(
                    label,
                    options["requests"],
                    lambda url=url: manager_client.get(url),
                    expect=200,
                )
                for label, url in (
                    ("queue (submitted, oldest first)", "/workspace/registrations/"),
                    ("queue, one conflict", "/workspace/registrations/?conflict=already_customer"),
                    ("queue, overdue", "/workspace/registrations/?overdue=yes"),
                )
            )
        self.stdout.write(
            f"bench_registrations: accounts={accounts} submit_p95_ms={submit:.1f} "
            f"queue_p95_ms={queue:.1f} database={connection.vendor}"
        )

    def _load(self, accounts: int) -> None:
        with tempfile.TemporaryDirectory() as directory:
            self.stdout.write(f"generating {accounts:,} accounts with coverage…")
            market_generate(directory=Path(directory), accounts=accounts, with_coverage=True)
            started = time.perf_counter()
            market_import(paths=[directory])
            self.stdout.write(f"loaded in {time.perf_counter() - started:.1f} s")
        self._analyze()

    def _analyze(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")

    def _history(self, rng: random.Random, count: int) -> None:
        """Registrations of every status over the last year, on distinct accounts for the
        approved ones, written in bulk."""
        today = timezone.localdate()
        partners = list(Partner.objects.values_list("pk", flat=True))
        regions = list(Region.objects.values_list("pk", flat=True))
        verticals = list(Vertical.objects.values_list("pk", flat=True))
        highest = Account.objects.order_by("-id").values_list("id", flat=True).first() or 1
        account_ids = rng.sample(range(1, highest + 1), min(count, highest))
        statuses = [s for s, _ in HISTORY_STATUSES]
        weights = [w for _, w in HISTORY_STATUSES]
        codes = ConflictCode.values
        batch: list[DealRegistration] = []
        for index in range(count):
            status = rng.choices(statuses, weights)[0]
            submitted = today - timedelta(days=rng.randint(0, 365))
            if status == RegistrationStatus.SUBMITTED:
                submitted = today - timedelta(days=rng.randint(0, 10))
            account_id = account_ids[index % len(account_ids)]
            name = f"Account {account_id - 1}"
            conflicts = [
                {"code": code, "message": "seeded"}
                for code in rng.sample(codes, rng.choice([0, 0, 1, 2]))
            ]
            decided = submitted + timedelta(days=rng.randint(1, 3))
            registration = DealRegistration(
                partner_id=rng.choice(partners),
                company_name=name,
                name_key=company_name_key(name),
                domain=f"bench-{index}.example" if rng.random() < 0.3 else "",
                region_id=rng.choice(regions),
                vertical_id=rng.choice(verticals),
                size_band=rng.choice(SizeBand.values),
                amount=Decimal(rng.randint(10, 500) * 1000),
                account_id=account_id,
                status=status,
                conflicts=conflicts,
                conflict_codes_text=f" {' '.join(c['code'] for c in conflicts)} "
                if conflicts
                else "",
                needs_review=bool(conflicts),
                arrival_conflicts=f" {' '.join(c['code'] for c in conflicts)} "
                if conflicts
                else "",
                submitted_at=timezone.make_aware(datetime.combine(submitted, dtime(9))),
            )
            if status != RegistrationStatus.SUBMITTED:
                registration.decided_at = registration.submitted_at + timedelta(days=2)
            if status in (RegistrationStatus.APPROVED, RegistrationStatus.WON):
                registration.protected_from = decided
                registration.protected_until = decided + timedelta(days=90)
            if status == RegistrationStatus.WON:
                registration.closed_on = decided + timedelta(days=30)
            batch.append(registration)
            if len(batch) >= 5000:
                DealRegistration.objects.bulk_create(batch)
                batch = []
        DealRegistration.objects.bulk_create(batch)

    def _partner_user(self, partner: Partner) -> User:
        user, _ = User.objects.get_or_create(username="bench-partner")
        user.groups.add(Group.objects.get_or_create(name=Role.PARTNER_USER)[0])
        PartnerUser.objects.update_or_create(user=user, defaults={"partner": partner})
        return user

    def _manager(self) -> User:
        user, _ = User.objects.get_or_create(username="bench-manager")
        user.groups.add(Group.objects.get_or_create(name=Role.SALES_MANAGER)[0])
        return user

    def _client(self, user: User, *, token: bool) -> Client:
        # As behind the production proxy, which terminates HTTPS and says so.
        headers = {"Host": "localhost", "X-Forwarded-Proto": "https"}
        if token:
            key = api_token_issue(user=user)[1]
            headers["Authorization"] = f"Token {key}"
            return Client(headers=headers)
        client = Client(headers=headers)
        client.force_login(user)
        return client

    def _payload(self, rng: random.Random, highest: int) -> dict[str, Any]:
        """Mostly companies of the market (matched by name, with their coverage to check),
        some prospects, some known by a website seen before."""
        roll = rng.random()
        if roll < 0.7:
            name = f"Account {rng.randrange(highest)} Ltd"
            website = ""
        elif roll < 0.9:
            name = f"Bench Prospect {uuid.uuid4().hex[:8]}"
            website = ""
        else:
            name = f"Bench Web {uuid.uuid4().hex[:8]}"
            website = f"https://www.bench-{rng.randrange(1000)}.example/"
        return {
            "company_name": name,
            "website": website,
            "region": "R03",
            "vertical": "V04",
            "size_band": "enterprise",
            "offering": "Model API",
            "amount": "120000.00",
            "currency": "USD",
            "expected_close_on": (timezone.localdate() + timedelta(days=60)).isoformat(),
        }

    def _time(self, label: str, requests: int, call: Any, *, expect: int) -> float:
        for _ in range(3):  # warm connections and caches
            call()
        timings, cpu = [], []
        with CaptureQueriesContext(connection) as queries:
            for _ in range(requests):
                started, cpu_started = time.perf_counter(), time.thread_time()
                response = call()
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.thread_time() - cpu_started) * 1000)
                if response.status_code != expect:
                    raise CommandError(
                        f"{label}: HTTP {response.status_code} {response.content[:300]!r}"
                    )
        p50 = statistics.median(timings)
        p95 = statistics.quantiles(timings, n=20)[-1] if len(timings) >= 2 else timings[0]
        # cpu: this process only, without the database server; on a busy machine the wall
        # time's excess over it is mostly waiting for a core.
        self.stdout.write(
            f"{label:<36} p50={p50:7.1f} ms  p95={p95:7.1f} ms  "
            f"cpu_p50={statistics.median(cpu):6.1f} ms  queries={len(queries) // requests}"
        )
        return p95
