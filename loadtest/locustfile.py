"""Mixed traffic for the load test: managers, partner users, executives and API clients.

Run by `scripts/loadtest.sh`, which seeds the users this file logs in as:
  lt-manager-N, lt-exec-N, lt-api-N (N = 1..LOADTEST_INTERNAL_USERS) and
  lt-partner-N (N = 1..LOADTEST_PARTNER_USERS, each a portal user of a different partner),
all with the password in LOADTEST_PASSWORD. Traffic goes to a loopback host only.

Partner users submit at most PARTNER_FEEDBACK_BUDGET feedback entries per login, under the
app's limit of 20 an hour per portal user; the rest of their visits read.

The users are FastHttpUser (geventhttpclient): locust runs on the same cores as the app, and
this client spends a fraction of the CPU per request of the requests-based HttpUser, which left
that much less for the server. Each user keeps its own cookies and connection, and redirects
are followed within the request that caused them, as before.
"""

from __future__ import annotations

import itertools
import os
import random
import re
from typing import Any
from urllib.parse import urlsplit

from locust import FastHttpUser, between, events, task
from locust.env import Environment

PASSWORD = os.environ.get("LOADTEST_PASSWORD", "")
INTERNAL_USERS = int(os.environ.get("LOADTEST_INTERNAL_USERS", "5"))
PARTNER_USERS = int(os.environ.get("LOADTEST_PARTNER_USERS", "40"))
PARTNER_FEEDBACK_BUDGET = 10
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
CATEGORIES = ["product", "pricing", "support", "enablement", "technical", "other"]

_logins = {role: itertools.count() for role in ("manager", "exec", "api", "partner")}


@events.test_start.add_listener  # type: ignore[untyped-decorator]
def _only_loopback(environment: Environment, **_: Any) -> None:
    host = urlsplit(environment.host or "").hostname
    if host not in LOOPBACK:
        raise SystemExit(f"the load test only targets a loopback host, not {environment.host!r}")
    if not PASSWORD:
        raise SystemExit("set LOADTEST_PASSWORD to the password of the load test users")


def _next_username(role: str, pool: int) -> str:
    return f"lt-{role}-{next(_logins[role]) % pool + 1}"


# As long as the requests-based client waited (it has no timeout): a slow answer counts as
# slow, not as a failure (FastHttpUser's default gives up after 60 s).
TIMEOUT_SECONDS = 600.0


class BrowserUser(FastHttpUser):
    """A person in a browser: logs in through the login form, then posts forms with the token."""

    abstract = True
    network_timeout = connection_timeout = TIMEOUT_SECONDS
    role = ""
    pool = INTERNAL_USERS

    def on_start(self) -> None:
        self.username = _next_username(self.role, self.pool)
        self.client.get("/accounts/login/", name="/accounts/login/")
        with self.client.post(
            "/accounts/login/",
            data={
                "username": self.username,
                "password": PASSWORD,
                "csrfmiddlewaretoken": self.csrf_token(),
            },
            name="/accounts/login/ [POST]",
            catch_response=True,
        ) as response:
            if urlsplit(response.url).path.startswith("/accounts/login/"):
                response.failure(f"login refused for {self.username}")
                self.stop()

    def csrf_token(self) -> str:
        return next((c.value or "" for c in self.client.cookiejar if c.name == "csrftoken"), "")

    def post_form(self, path: str, data: dict[str, Any], *, name: str, refused_at: str) -> None:
        """POST a form; a form shown again (still at `refused_at`) counts as a failure."""
        with self.client.post(
            path,
            data={**data, "csrfmiddlewaretoken": self.csrf_token()},
            name=name,
            catch_response=True,
        ) as response:
            if response.ok and urlsplit(response.url).path == refused_at:
                response.failure("the form was refused")


class Manager(BrowserUser):
    """A sales manager: browses the lists, logs feedback, adds contacts."""

    weight = 4
    role = "manager"
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        page = self.client.get("/workspace/partners/", name="/workspace/partners/")
        self.partner_ids = [
            int(pk) for pk in re.findall(r"/workspace/partners/(\d+)/", page.text or "")
        ]

    @task(4)
    def accounts(self) -> None:
        self.client.get("/workspace/accounts/", name="/workspace/accounts/")

    @task(2)
    def partners(self) -> None:
        self.client.get("/workspace/partners/", name="/workspace/partners/")

    @task(2)
    def feedback_inbox(self) -> None:
        self.client.get("/workspace/feedback/", name="/workspace/feedback/")

    @task(1)
    def agreements(self) -> None:
        self.client.get("/workspace/agreements/", name="/workspace/agreements/")

    @task(2)
    def partner_detail(self) -> None:
        if self.partner_ids:
            pk = random.choice(self.partner_ids)
            self.client.get(f"/workspace/partners/{pk}/", name="/workspace/partners/[id]/")

    @task(1)
    def log_feedback(self) -> None:
        if not self.partner_ids:
            return
        self.client.get("/workspace/feedback/log/", name="/workspace/feedback/log/")
        self.post_form(
            "/workspace/feedback/log/",
            {
                "partner": random.choice(self.partner_ids),
                "category": random.choice(CATEGORIES),
                "satisfaction": random.randint(1, 5),
                "nps": random.randint(0, 10),
                "subject": "Quarterly review notes",
                "body": "Logged during the partner call: pipeline and enablement needs.",
            },
            name="/workspace/feedback/log/ [POST]",
            refused_at="/workspace/feedback/log/",
        )

    @task(1)
    def add_contact(self) -> None:
        if not self.partner_ids:
            return
        pk = random.choice(self.partner_ids)
        path = f"/workspace/partners/{pk}/contacts/"
        self.post_form(
            path,
            {
                "name": f"Load Contact {random.randint(1, 10**6)}",
                "title": "Alliance manager",
                "email": f"contact{random.randint(1, 10**6)}@example.com",
            },
            name="/workspace/partners/[id]/contacts/ [POST]",
            refused_at=path,
        )


class PartnerPortalUser(BrowserUser):
    """A partner user in the portal: reads their pages, submits feedback within the limit."""

    weight = 2
    role = "partner"
    pool = PARTNER_USERS
    wait_time = between(1, 3)

    def on_start(self) -> None:
        super().on_start()
        self.submitted = 0

    @task(3)
    def home(self) -> None:
        self.client.get("/portal/", name="/portal/")

    @task(2)
    def accounts(self) -> None:
        self.client.get("/portal/accounts/", name="/portal/accounts/")

    @task(2)
    def agreements(self) -> None:
        self.client.get("/portal/agreements/", name="/portal/agreements/")

    @task(2)
    def feedback_list(self) -> None:
        self.client.get("/portal/feedback/", name="/portal/feedback/")

    @task(1)
    def submit_feedback(self) -> None:
        if self.submitted >= PARTNER_FEEDBACK_BUDGET:
            self.feedback_list()
            return
        self.client.get("/portal/feedback/new/", name="/portal/feedback/new/")
        self.post_form(
            "/portal/feedback/new/",
            {
                "category": random.choice(CATEGORIES),
                "satisfaction": random.randint(1, 5),
                "nps": random.randint(0, 10),
                "subject": "Deal registration turnaround",
                "body": "Registrations took three days to confirm this month; can it be faster?",
            },
            name="/portal/feedback/new/ [POST]",
            refused_at="/portal/feedback/new/",
        )
        self.submitted += 1


class Executive(BrowserUser):
    """Leadership on the dashboard."""

    weight = 2
    role = "exec"
    wait_time = between(2, 5)

    @task
    def dashboard(self) -> None:
        self.client.get("/dashboard/", name="/dashboard/")


class ApiClient(FastHttpUser):
    """An integrator: a token once, then list endpoints and a week's segment metrics."""

    weight = 2
    wait_time = between(1, 2)
    network_timeout = connection_timeout = TIMEOUT_SECONDS

    def on_start(self) -> None:
        username = _next_username("api", INTERNAL_USERS)
        response = self.client.post(
            "/api/v1/auth/token/",
            data={"username": username, "password": PASSWORD},
            name="/api/v1/auth/token/",
        )
        self.client.auth_header = f"Token {response.json().get('token', '')}"
        weeks = self.client.get("/api/v1/metrics/weeks/", name="/api/v1/metrics/weeks/").json()
        listed = weeks.get("results", weeks) if isinstance(weeks, dict) else weeks
        self.weeks = [item["week"] if isinstance(item, dict) else item for item in listed] or [""]

    @task(3)
    def accounts(self) -> None:
        self.client.get("/api/v1/accounts/", name="/api/v1/accounts/")

    @task(1)
    def partners(self) -> None:
        self.client.get("/api/v1/partners/", name="/api/v1/partners/")

    @task(2)
    def segments(self) -> None:
        week = random.choice(self.weeks)
        self.client.get(
            f"/api/v1/metrics/segments/?week={week}", name="/api/v1/metrics/segments/?week="
        )
