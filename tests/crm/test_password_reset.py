"""Password reset: nothing is looked up or sent in the request, so a known and an unknown
address get the same answer in the same time; the e-mail goes through the outbox; requests
are rate limited per address and per client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from crm.models import OutboundEmail
from crm.services import PASSWORD_RESETS_PER_ADDRESS, PASSWORD_RESETS_PER_CLIENT
from tests.cast import Cast

pytestmark = pytest.mark.django_db


def ask(email: str, address: str = "10.3.3.3") -> Any:
    return Client(REMOTE_ADDR=address).post("/accounts/password_reset/", {"email": email})


def test_it_answers_a_known_and_an_unknown_address_alike_and_sends_nothing_meanwhile(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as queued:
        known = ask("manager@example.com")
        unknown = ask("nobody@example.com")
    assert (known.status_code, known["Location"]) == (unknown.status_code, unknown["Location"])
    assert known["Location"] == "/accounts/password_reset/done/"
    # Nothing was looked up, written to the outbox or sent while answering.
    assert not OutboundEmail.objects.exists() and not mail.outbox
    assert len(queued) == 2  # the same work queued for both

    with django_capture_on_commit_callbacks(execute=True):
        for callback in queued:  # as the worker would, later
            callback()
    assert [m.to for m in mail.outbox] == [["manager@example.com"]]
    assert OutboundEmail.objects.get().topic == "password-reset"


def test_the_link_sets_a_new_password(cast: Cast, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ask("partner-a@example.com")
    link = re.search(r"https?://[^/]+(/accounts/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    browser = Client()
    form = browser.get(link.group(1), follow=True)
    assert form.status_code == 200
    new = "a-brand-new-passphrase-7"
    done = browser.post(
        form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new}, follow=True
    )
    assert done.status_code == 200
    cast.partner_a_user.refresh_from_db()
    assert cast.partner_a_user.check_password(new)


def test_it_limits_requests_per_address_and_per_client(cast: Cast) -> None:
    for number in range(PASSWORD_RESETS_PER_ADDRESS):
        assert ask("manager@example.com", f"10.4.0.{number}").status_code == 302
    refused = ask("manager@example.com", "10.4.1.1")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 3600
    assert "too many" in refused.content.decode().lower()
    assert ask("exec@example.com", "10.4.1.1").status_code == 302

    for number in range(PASSWORD_RESETS_PER_CLIENT):
        ask(f"someone{number}@example.com", "10.5.5.5")
    assert ask("rep@example.com", "10.5.5.5").status_code == 429


def test_the_sign_in_page_offers_the_reset(db: None) -> None:
    page = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/password_reset/"' in page


def test_it_writes_the_e_mail_in_the_language_the_reset_was_asked_in(
    cast: Cast, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        Client(HTTP_ACCEPT_LANGUAGE="zh-hans").post(
            "/accounts/password_reset/", {"email": "exec@example.com"}
        )
    assert mail.outbox[0].subject == "重置您的 Channel CRM 密码"
    assert "/accounts/reset/" in mail.outbox[0].body
