from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.files.base import ContentFile
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone

from analytics.models import MetricsRun
from crm.models import AuditEvent
from tests.cast import Cast
from tests.factories import TEST_PASSWORD, FeedbackFactory

BASE_DIR = Path(settings.BASE_DIR)


def _boom(request: object) -> object:
    raise RuntimeError("SECRET-INTERNAL-DETAIL select * from crm_account")


urlpatterns = [path("boom/", _boom)]


def _login(client: Client, username: str, password: str, **extra: str) -> object:
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


class TestHeaders:
    def test_it_sends_a_strict_content_security_policy_and_the_usual_headers(
        self, cast: Cast
    ) -> None:
        response = Client().get("/accounts/login/")
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response["X-Frame-Options"] == "DENY"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Referrer-Policy"] == "same-origin"

    def test_it_tags_each_response_with_a_request_id(self) -> None:
        generated = Client().get("/accounts/login/")["X-Request-ID"]
        assert len(generated) == 32
        echoed = Client().get("/accounts/login/", headers={"x-request-id": "proxy-abc.123"})
        assert echoed["X-Request-ID"] == "proxy-abc.123"
        forged = Client().get("/accounts/login/", headers={"x-request-id": "bad id\nInjected: yes"})
        assert forged["X-Request-ID"] != "bad id\nInjected: yes"


class TestPrivateAnswers:
    def test_it_keeps_signed_in_pages_api_answers_and_downloads_out_of_shared_caches(
        self, cast: Cast
    ) -> None:
        from tests.factories import AgreementFactory

        agreement = AgreementFactory(partner=cast.partner_a)
        agreement.signed_document.save("signed.pdf", ContentFile(b"%PDF-1.4\n%%EOF\n"))
        client = Client()
        client.force_login(cast.manager)
        for url in (
            "/workspace/",
            "/workspace/accounts/?format=csv",
            f"/workspace/agreements/{agreement.pk}/document/",
            "/api/v1/partners/",
        ):
            control = client.get(url).get("Cache-Control", "")
            assert {"private", "no-store"} <= {part.strip() for part in control.split(",")}, url

    def test_it_refuses_a_body_larger_than_the_limit_before_reading_it(self, cast: Cast) -> None:
        client = Client()
        client.force_login(cast.partner_a_user)
        response = client.post(
            "/portal/feedback/new/",
            {"category": "other", "satisfaction": "3", "subject": "x", "body": "y"},
            CONTENT_LENGTH=str(settings.REQUEST_MAX_BYTES + 1),
        )
        assert response.status_code == 413
        assert "larger than" in response.content.decode()
        api = client.post(
            "/api/v1/feedback/",
            "{}",
            content_type="application/json",
            CONTENT_LENGTH=str(settings.REQUEST_MAX_BYTES + 1),
        )
        assert api.status_code == 413 and "larger than" in api.json()["detail"]


class TestErrorPages:
    def test_it_shows_its_own_404_page(self, cast: Cast) -> None:
        client = Client()
        client.force_login(cast.manager)
        response = client.get("/no/such/page/")
        assert response.status_code == 404
        assert "Page not found" in response.content.decode()

    @override_settings(ROOT_URLCONF=__name__)
    def test_it_shows_a_500_page_without_traceback_settings_or_sql(self) -> None:
        response = Client(raise_request_exception=False).get("/boom/")
        html = response.content.decode()
        assert response.status_code == 500 and "Something went wrong" in html
        for leak in [
            "SECRET-INTERNAL-DETAIL",
            "Traceback",
            "select *",
            "SECRET_KEY",
            "crm_account",
        ]:
            assert leak not in html


class TestLockoutAndAudit:
    def test_it_locks_a_username_after_repeated_failures_and_audits_without_passwords(
        self, cast: Cast
    ) -> None:
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(Client(REMOTE_ADDR="10.9.0.1"), "manager", "wrong-password-123")
        locked = _login(Client(REMOTE_ADDR="10.9.0.1"), "manager", TEST_PASSWORD)
        assert locked.status_code == 429
        assert "Too many failed sign-ins" in locked.content.decode()
        kinds = list(AuditEvent.objects.values_list("kind", flat=True))
        assert kinds.count("login_failed") >= settings.AXES_FAILURE_LIMIT and "locked_out" in kinds
        for event in AuditEvent.objects.all():
            stored = " ".join(str(value) for value in vars(event).values())
            assert "wrong-password-123" not in stored and TEST_PASSWORD not in stored
        assert AuditEvent.objects.filter(
            kind="login_failed", username="manager", ip_address="10.9.0.1"
        ).exists()

    def test_it_never_locks_a_named_user_out_for_strangers_failures(self, cast: Cast) -> None:
        for _ in range(settings.AXES_FAILURE_LIMIT + 2):
            _login(Client(REMOTE_ADDR="203.0.113.7"), "manager", "guessing-the-password")
        assert (
            _login(Client(REMOTE_ADDR="203.0.113.7"), "manager", TEST_PASSWORD).status_code == 429
        )
        assert _login(Client(REMOTE_ADDR="10.9.0.2"), "manager", TEST_PASSWORD).status_code == 302

    def test_it_reads_the_client_address_behind_the_trusted_proxy(
        self, cast: Cast, settings: Any
    ) -> None:
        settings.TRUSTED_PROXY_COUNT = 1
        proxy = {"REMOTE_ADDR": "10.0.0.1"}
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(
                Client(**proxy),
                "manager",
                "wrong-password-123",
                HTTP_X_FORWARDED_FOR="198.51.100.4",
            )
        # Another client behind the same proxy signs in; the one that failed stays locked.
        other = _login(Client(**proxy), "manager", TEST_PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.9")
        assert other.status_code == 302
        again = _login(
            Client(**proxy), "exec", TEST_PASSWORD, HTTP_X_FORWARDED_FOR="10.1.1.1, 198.51.100.4"
        )
        assert again.status_code == 429
        addresses = set(
            AuditEvent.objects.filter(kind="login_failed").values_list("ip_address", flat=True)
        )
        assert addresses == {"198.51.100.4"}

    def test_it_ignores_a_forwarded_address_without_a_trusted_proxy(self, cast: Cast) -> None:
        spoofed = {"HTTP_X_FORWARDED_FOR": "192.0.2.200"}
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _login(Client(REMOTE_ADDR="10.7.7.7"), "nobody", "whatever-password", **spoofed)
        assert _login(Client(REMOTE_ADDR="10.7.7.7"), "exec", TEST_PASSWORD).status_code == 429
        assert AuditEvent.objects.filter(ip_address="10.7.7.7").exists()
        assert not AuditEvent.objects.filter(ip_address="192.0.2.200").exists()

    def test_it_locks_a_client_address_trying_many_usernames(self, cast: Cast) -> None:
        for name in ["a", "b", "c", "d", "e", "f"]:
            _login(Client(REMOTE_ADDR="10.9.9.9"), f"nobody-{name}", "whatever-password")
        assert _login(Client(REMOTE_ADDR="10.9.9.9"), "exec", TEST_PASSWORD).status_code == 429
        assert _login(Client(REMOTE_ADDR="10.9.9.10"), "exec", TEST_PASSWORD).status_code == 302

    def test_it_audits_logins_logouts_and_cross_partner_404s(self, cast: Cast) -> None:
        client = Client(REMOTE_ADDR="10.1.1.1")
        assert _login(client, "partner-a", TEST_PASSWORD).status_code == 302
        theirs = FeedbackFactory(partner=cast.partner_b)
        assert client.get(f"/portal/feedback/{theirs.pk}/").status_code == 404
        client.post("/accounts/logout/")
        events = {
            (e.kind, e.username, e.partner_id, e.ip_address) for e in AuditEvent.objects.all()
        }
        assert ("login", "partner-a", cast.partner_a.pk, "10.1.1.1") in events
        assert ("not_found", "partner-a", cast.partner_a.pk, "10.1.1.1") in events
        assert ("logout", "partner-a", cast.partner_a.pk, "10.1.1.1") in events

    def test_it_rotates_the_session_at_login_and_ends_it_at_logout(self, cast: Cast) -> None:
        client = Client()
        client.get("/accounts/login/")
        client.cookies["sessionid"] = "attacker-chosen-session"
        _login(client, "manager", TEST_PASSWORD)
        session = client.cookies["sessionid"].value
        assert session != "attacker-chosen-session"
        client.post("/accounts/logout/")
        stale = Client()
        stale.cookies["sessionid"] = session
        assert stale.get("/workspace/").status_code == 302

    def test_it_ends_other_sessions_when_the_password_changes(self, cast: Cast) -> None:
        other_device = Client()
        _login(other_device, "partner-a", TEST_PASSWORD)
        this_device = Client()
        _login(this_device, "partner-a", TEST_PASSWORD)
        new = "another-long-passphrase-42"
        this_device.post(
            "/portal/profile/",
            {"old_password": TEST_PASSWORD, "new_password1": new, "new_password2": new},
        )
        assert this_device.get("/portal/").status_code == 200
        assert other_device.get("/portal/").status_code == 302

    def test_it_requires_twelve_characters_and_refuses_common_passwords(self, cast: Cast) -> None:
        client = Client()
        client.force_login(cast.partner_a_user)
        for weak in ["short-pw-1", "password1234"]:
            response = client.post(
                "/portal/profile/",
                {"old_password": TEST_PASSWORD, "new_password1": weak, "new_password2": weak},
            )
            assert 'data-field-error="new_password2"' in response.content.decode(), weak


class TestPasswords:
    def test_it_stores_argon2_hashes_and_upgrades_older_ones_at_sign_in(
        self, cast: Cast, settings: Any
    ) -> None:
        from crm import settings as production

        settings.PASSWORD_HASHERS = production.PASSWORD_HASHERS
        user = get_user_model().objects.get(username="manager")
        user.set_password(TEST_PASSWORD)
        assert user.password.startswith("argon2$")
        user.password = make_password(TEST_PASSWORD, hasher="pbkdf2_sha256")
        user.save()
        assert _login(Client(), "manager", TEST_PASSWORD).status_code == 302
        user.refresh_from_db()
        assert user.password.startswith("argon2$")
        assert _login(Client(), "manager", TEST_PASSWORD).status_code == 302


class TestCsrf:
    def test_it_refuses_forms_posted_without_the_csrf_token(self, cast: Cast) -> None:
        client = Client(enforce_csrf_checks=True)
        client.force_login(cast.partner_a_user)
        response = client.post(
            "/portal/feedback/new/",
            {"category": "other", "satisfaction": "3", "subject": "x", "body": "y"},
        )
        assert response.status_code == 403

    def test_it_explains_a_stale_form_on_its_own_page(self, cast: Cast) -> None:
        response = Client(enforce_csrf_checks=True).post(
            "/accounts/login/", {"username": "manager", "password": TEST_PASSWORD}
        )
        html = response.content.decode()
        assert response.status_code == 403
        assert "reload the page" in html and "CSRF verification failed" not in html
        assert 'href="/static/' in html  # the app's layout, not Django's bare page


class TestHealth:
    @staticmethod
    def installed(days_ago: int) -> None:
        """Date the installation: when its migrations were applied."""
        MigrationRecorder.Migration.objects.update(
            applied=timezone.now() - timedelta(days=days_ago)
        )

    def test_a_new_installation_without_a_snapshot_yet_is_healthy(self, db: None) -> None:
        self.installed(days_ago=8)
        response = Client().get("/health/")
        body = response.json()
        assert response.status_code == 200 and body["ok"] is True
        assert body["checks"]["database"]["ok"] is True
        assert body["checks"]["latest_final_snapshot"] == {
            "ok": True,
            "week": None,
            "age_days": None,
            "installed_days": 8,
        }

    def test_an_installation_whose_weekly_job_never_ran_is_unhealthy(self, db: None) -> None:
        self.installed(days_ago=10)
        response = Client().get("/health/")
        assert response.status_code == 503
        assert response.json()["checks"]["latest_final_snapshot"] == {
            "ok": False,
            "week": None,
            "age_days": None,
            "installed_days": 10,
        }

    def test_a_snapshot_older_than_nine_days_is_unhealthy_even_on_a_new_installation(
        self, db: None
    ) -> None:
        self.installed(days_ago=1)
        today = timezone.localdate()
        run = MetricsRun.objects.create(
            week="2026-W40",
            as_of=today - timedelta(days=10),
            final=True,
            status="succeeded",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        response = Client().get("/health/")
        assert response.status_code == 503
        assert response.json()["checks"]["latest_final_snapshot"] == {
            "ok": False,
            "week": "2026-W40",
            "age_days": 10,
        }
        run.as_of = today - timedelta(days=3)
        run.save()
        assert Client().get("/health/").status_code == 200


@pytest.mark.parametrize("debug", ["false"])
def test_it_passes_the_deployment_checklist_with_production_settings(debug: str) -> None:
    # A clean environment: the test settings put development values into os.environ.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "crm.settings",
        "DEBUG": debug,
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "crm.example.com",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
