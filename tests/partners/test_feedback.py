from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from crm.models import OutboundEmail
from partners.models import Feedback, FeedbackStatus
from partners.services import FEEDBACK_PER_HOUR, FeedbackEntry, feedback_submit
from tests.cast import Cast, signed_in
from tests.factories import FeedbackFactory, FeedbackNoteFactory, UserFactory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _entry(**overrides: object) -> FeedbackEntry:
    values: dict[str, object] = {
        "category": "support",
        "satisfaction": 2,
        "subject": "Slow answers",
        "body": "Tickets wait three days.",
        "nps": 4,
    }
    values.update(overrides)
    return FeedbackEntry(**values)  # type: ignore[arg-type]


class TestPortalFeedback:
    def test_it_submits_feedback_with_an_attachment_and_notifies_the_managers(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        cast.manager.email = "manager@example.com"
        cast.manager.save()
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_in(cast.partner_a_user).post(
                "/portal/feedback/new/",
                {
                    "category": "support",
                    "satisfaction": "2",
                    "nps": "4",
                    "subject": "Slow answers",
                    "body": "Tickets wait three days.",
                    "attachment": SimpleUploadedFile("shot.png", PNG),
                },
            )
        feedback = Feedback.objects.get()
        assert (
            response.status_code == 302
            and response["Location"] == f"/portal/feedback/{feedback.pk}/"
        )
        assert feedback.partner == cast.partner_a and feedback.submitted_by == cast.partner_a_user
        assert (
            feedback.attachment.name.startswith("feedback/")
            and "shot" not in feedback.attachment.name
        )
        assert [m.to for m in mail.outbox] == [["manager@example.com"]]

    def test_it_refuses_an_attachment_that_is_not_what_it_claims(self, cast: Cast) -> None:
        response = signed_in(cast.partner_a_user).post(
            "/portal/feedback/new/",
            {
                "category": "support",
                "satisfaction": "2",
                "subject": "S",
                "body": "B",
                "attachment": SimpleUploadedFile("shot.png", b"#!/bin/sh\nrm -rf /"),
            },
        )
        assert 'data-field-error="attachment"' in response.content.decode()
        assert not Feedback.objects.exists()

    def test_it_limits_submissions_per_hour_with_a_clear_message(self, cast: Cast) -> None:
        for _ in range(FEEDBACK_PER_HOUR):
            feedback_submit(user=cast.partner_a_user, entry=_entry())
        with pytest.raises(ValidationError, match="last hour"):
            feedback_submit(user=cast.partner_a_user, entry=_entry())
        later = timezone.now() + timedelta(hours=1, minutes=1)
        feedback_submit(user=cast.partner_a_user, entry=_entry(), now=later)

    def test_it_answers_the_portal_form_past_the_limit_with_429_and_retry_after(
        self, cast: Cast
    ) -> None:
        for _ in range(FEEDBACK_PER_HOUR):
            feedback_submit(user=cast.partner_a_user, entry=_entry())
        response = signed_in(cast.partner_a_user).post(
            "/portal/feedback/new/",
            {"category": "support", "satisfaction": "2", "subject": "S", "body": "B"},
        )
        assert response.status_code == 429
        assert 0 < int(response["Retry-After"]) <= 3600
        assert "last hour" in response.content.decode()
        assert Feedback.objects.count() == FEEDBACK_PER_HOUR

    def test_it_never_shows_internal_notes_to_the_partner(self, cast: Cast) -> None:
        feedback = FeedbackFactory(partner=cast.partner_a)
        FeedbackNoteFactory(feedback=feedback, body="INTERNAL-ONLY pricing talk")
        html = (
            signed_in(cast.partner_a_user).get(f"/portal/feedback/{feedback.pk}/").content.decode()
        )
        assert feedback.subject in html and "INTERNAL-ONLY" not in html

    def test_it_hides_another_partners_feedback_with_a_404(self, cast: Cast) -> None:
        theirs = FeedbackFactory(partner=cast.partner_b)
        client = signed_in(cast.partner_a_user)
        assert client.get(f"/portal/feedback/{theirs.pk}/").status_code == 404
        assert client.post(f"/portal/feedback/{theirs.pk}/", {"body": "hi"}).status_code == 404
        assert not theirs.replies.exists()

    def test_it_escapes_script_and_html_in_feedback(self, cast: Cast) -> None:
        payload = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        signed_in(cast.partner_a_user).post(
            "/portal/feedback/new/",
            {"category": "other", "satisfaction": "3", "subject": payload, "body": payload},
        )
        feedback = Feedback.objects.get()
        for client, path in [
            (signed_in(cast.partner_a_user), f"/portal/feedback/{feedback.pk}/"),
            (signed_in(cast.manager), f"/workspace/feedback/{feedback.pk}/"),
            (signed_in(cast.manager), "/workspace/feedback/"),
        ]:
            html = client.get(path).content.decode()
            assert "<script>alert" not in html and "<img src=x" not in html, path
            assert "&lt;script&gt;" in html, path

    def test_it_adds_a_follow_up_and_reopens_resolved_feedback(self, cast: Cast) -> None:
        feedback = FeedbackFactory(partner=cast.partner_a, status=FeedbackStatus.RESOLVED)
        signed_in(cast.partner_a_user).post(
            f"/portal/feedback/{feedback.pk}/", {"body": "Still broken"}
        )
        feedback.refresh_from_db()
        assert feedback.status == FeedbackStatus.IN_PROGRESS
        assert feedback.replies.get().body == "Still broken"


class TestFeedbackTriage:
    def test_it_replies_and_emails_the_partners_portal_users(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        cast.partner_a_user.email = "alpha@partner.example"
        cast.partner_a_user.save()
        feedback = FeedbackFactory(partner=cast.partner_a)
        with django_capture_on_commit_callbacks(execute=True):
            response = signed_in(cast.manager).post(
                f"/workspace/feedback/{feedback.pk}/reply/",
                {"reply-body": "Fixed in the next release."},
            )
        assert response.status_code == 302
        feedback.refresh_from_db()
        assert feedback.status == FeedbackStatus.ACKNOWLEDGED
        assert [m.to for m in mail.outbox] == [["alpha@partner.example"]]
        assert f"/portal/feedback/{feedback.pk}/" in mail.outbox[0].body
        assert (
            "Fixed in the next release."
            in signed_in(cast.partner_a_user)
            .get(f"/portal/feedback/{feedback.pk}/")
            .content.decode()
        )

    def test_it_adds_internal_notes_without_emailing_anyone(self, cast: Cast) -> None:
        feedback = FeedbackFactory(partner=cast.partner_a)
        signed_in(cast.manager).post(
            f"/workspace/feedback/{feedback.pk}/note/", {"note-body": "Call them"}
        )
        assert feedback.internal_notes.get().body == "Call them"
        assert not OutboundEmail.objects.exists()

    def test_it_keeps_an_empty_reply_form_with_the_error_next_to_it(self, cast: Cast) -> None:
        feedback = FeedbackFactory(partner=cast.partner_a)
        response = signed_in(cast.manager).post(
            f"/workspace/feedback/{feedback.pk}/reply/", {"reply-body": " "}
        )
        assert response.status_code == 400
        assert 'data-field-error="body"' in response.content.decode()

    def test_it_assigns_and_moves_status_but_only_to_colleagues(self, cast: Cast) -> None:
        feedback = FeedbackFactory(partner=cast.partner_a)
        client = signed_in(cast.manager)
        client.post(
            f"/workspace/feedback/{feedback.pk}/triage/",
            {"status": "in_progress", "assignee": cast.rep_user.pk},
        )
        feedback.refresh_from_db()
        assert (feedback.status, feedback.assignee) == ("in_progress", cast.rep_user)
        client.post(
            f"/workspace/feedback/{feedback.pk}/triage/",
            {"status": "closed", "assignee": cast.partner_a_user.pk},
        )
        feedback.refresh_from_db()
        assert feedback.status == "in_progress"

    def test_it_filters_the_inbox(self, cast: Cast) -> None:
        FeedbackFactory(partner=cast.partner_a, subject="Happy one", satisfaction=5)
        FeedbackFactory(
            partner=cast.partner_b,
            subject="Unhappy one",
            satisfaction=1,
            status=FeedbackStatus.CLOSED,
        )
        client = signed_in(cast.manager)
        html = client.get("/workspace/feedback/?satisfaction=1&status=all").content.decode()
        assert "Unhappy one" in html and "Happy one" not in html
        html = client.get("/workspace/feedback/?status=open").content.decode()
        assert "Happy one" in html and "Unhappy one" not in html
        html = client.get(
            f"/workspace/feedback/?partner={cast.partner_b.pk}&status=all"
        ).content.decode()
        assert "Unhappy one" in html and "Happy one" not in html

    def test_it_opens_the_inbox_on_open_feedback(self, cast: Cast) -> None:
        FeedbackFactory(partner=cast.partner_a, subject="Still open")
        FeedbackFactory(partner=cast.partner_a, subject="Done with", status=FeedbackStatus.CLOSED)
        response = signed_in(cast.manager).get("/workspace/feedback/")
        html = response.content.decode()
        assert "Still open" in html and "Done with" not in html
        assert '<option value="open" selected>' in html

    def test_its_sort_links_replace_the_order_instead_of_appending_another(
        self, cast: Cast
    ) -> None:
        FeedbackFactory(partner=cast.partner_a)
        client = signed_in(cast.manager)
        html = client.get("/workspace/feedback/?status=all&sort=satisfaction").content.decode()
        links = re.findall(r'href="\?([^"]*sort=[^"]*)"', html)
        assert links and all(link.count("sort=") == 1 for link in links)
        assert any("sort=-satisfaction" in link and "status=all" in link for link in links)

    def test_it_logs_feedback_on_a_partners_behalf(self, cast: Cast) -> None:
        signed_in(cast.manager).post(
            "/workspace/feedback/log/",
            {
                "partner": cast.partner_b.pk,
                "category": "pricing",
                "satisfaction": "3",
                "subject": "Heard at QBR",
                "body": "Discounts too low.",
            },
        )
        feedback = Feedback.objects.get()
        assert feedback.logged_by == cast.manager and feedback.partner == cast.partner_b

    def test_it_does_not_let_a_rep_reply(self, cast: Cast) -> None:
        other = UserFactory(role="sales_rep")
        feedback = FeedbackFactory(partner=cast.partner_a)
        response = signed_in(other).post(
            f"/workspace/feedback/{feedback.pk}/reply/", {"reply-body": "x"}
        )
        assert response.status_code == 404 and not feedback.replies.exists()


class TestSatisfactionScore:
    """No score is preselected: a partner who skips the field must not submit "very poor"."""

    @pytest.mark.parametrize(
        ("who", "path"),
        [("partner_a_user", "/portal/feedback/new/"), ("manager", "/workspace/feedback/log/")],
    )
    def test_it_preselects_no_score_and_labels_both_ends(
        self, cast: Cast, who: str, path: str
    ) -> None:
        html = signed_in(getattr(cast, who)).get(path).content.decode()
        select = html[
            html.index('name="satisfaction"') : html.index(
                "</select>", html.index('name="satisfaction"')
            )
        ]
        assert "selected" not in select.replace('value="" selected', "")
        assert '<option value="" selected>' in select
        assert "1 = very poor" in select and "5 = excellent" in select

    @pytest.mark.parametrize(
        ("who", "path", "extra"),
        [
            ("partner_a_user", "/portal/feedback/new/", {}),
            ("manager", "/workspace/feedback/log/", {"partner": "partner_a"}),
        ],
    )
    def test_it_refuses_feedback_without_a_score_next_to_the_field(
        self, cast: Cast, who: str, path: str, extra: dict[str, str]
    ) -> None:
        data = {"category": "support", "subject": "Slow answers", "body": "Three days."}
        data.update({key: str(getattr(cast, value).pk) for key, value in extra.items()})
        response = signed_in(getattr(cast, who)).post(path, data)
        assert response.status_code == 200
        assert 'data-field-error="satisfaction"' in response.content.decode()
        assert "Choose a satisfaction score from 1 to 5." in response.content.decode()
        assert not Feedback.objects.exists()
