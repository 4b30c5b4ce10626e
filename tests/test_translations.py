"""Simplified Chinese everywhere: every page each role can open, the e-mails and the export
headers are rendered in Chinese, with data written in Chinese, and every visible string left
in English is reported (template text someone forgot to translate).

Text counts as visible when a reader sees or hears it: text nodes outside scripts and styles,
and the placeholder, title, aria-label and alt attributes. Ids, codes, addresses, ISO weeks
and a few names that stay as they are in Chinese (NPS, CSV, the product's name) are allowed.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client
from django.utils import timezone, translation

from channels.models import CoverageAssignment, OpportunitySubStage
from channels.opportunity_services import opportunity_change, opportunity_win
from crm.models import Region, Vertical
from partners.models import Agreement, ImportJob
from partners.services import invitation_path
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    FeedbackNoteFactory,
    FeedbackReplyFactory,
    OpportunityFactory,
    PartnerContactFactory,
    PartnerUserFactory,
)

LOCALE = "zh-hans"

# What may stay in Latin letters on a Chinese page.
ALLOWED = re.compile(
    r"""
      [\w.+-]+@[\w.-]+\.\w+                      # e-mail addresses
    | https?://\S+                               # addresses
    | \b\d{4}-W\d{2}\b                           # ISO weeks
    | \b[A-Za-z]+(?:[-_][A-Za-z0-9]+)*-\d[\w-]*  # ids: AGR-1A2B3C4D, ACC-0000012, P-0003
    | \b[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+\b      # codes: P-ALPHA, AG-HIST
    | \b(?:NPS|MRR|ARPA|CSV|XLSX|PDF|PNG|JPEG|API|ISO|OEM|SMB|USD|EUR|CNY|ID|MB|UTF-8)\b
    | Channel\ CRM | English | Redoc | Swagger | Ctrl | Mac | yyyy-mm-dd
    | \bpp\b                                     # percentage points
    """,
    re.X,
)
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")


class VisibleText(HTMLParser):
    """Every text a reader sees or hears, with where it was found."""

    # Code shows identifiers as they are: file names, column names, the importer's problems.
    HIDDEN = {"script", "style", "textarea", "code"}
    ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hidden = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self.hidden += 1
        for name, value in attrs:
            if name in self.ATTRIBUTES and value:
                self.texts.append(value)
        if tag == "input" and dict(attrs).get("type") in ("submit", "button"):
            self.texts.append(dict(attrs).get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.texts.append(data.strip())


def untranslated(text: str, known: set[str]) -> list[str]:
    """The strings of `text` (HTML) still holding English words, less the data in `known`."""
    parser = VisibleText()
    parser.feed(text)
    found = []
    for piece in parser.texts:
        rest = ALLOWED.sub(" ", piece)
        for value in known:
            rest = rest.replace(value, " ")
        if LATIN_WORD.search(rest):
            found.append(piece)
    return found


@pytest.fixture
def chinese_world(cast: Cast) -> dict[str, Any]:
    """A market written in Chinese, so any English left on a page comes from the code."""
    today = timezone.localdate()
    cast.partner_a.name, cast.partner_b.name = "阿尔法系统", "贝塔云"
    cast.partner_a.save()
    cast.partner_b.save()
    for user, (first, last) in (
        (cast.manager, ("美", "林")),
        (cast.rep_user, ("丽", "陈")),
        (cast.executive, ("伟", "王")),
        (cast.partner_a_user, ("晓", "张")),
    ):
        user.first_name, user.last_name = first, last
        user.save()
    cast.rep.name = "陈丽"
    cast.rep.save()
    east = Region.objects.create(code="east", name="East China", name_zh="华东")
    finance = Vertical.objects.create(code="fin", name="Finance", name_zh="金融")
    agreement = AgreementFactory(
        partner=cast.partner_a,
        regions=[east],
        start_date=today - timedelta(days=300),
        end_date=today + timedelta(days=40),
        annual_target=1250000,
    )
    agreement.signed_document.save("s.pdf", SimpleUploadedFile("s.pdf", b"%PDF-1.4\n%%EOF\n"))
    agreement.notice_days = 45
    agreement.save()
    draft = AgreementFactory(
        partner=cast.partner_a,
        status="draft",
        signed_on=None,
        start_date=today + timedelta(days=41),
        end_date=today + timedelta(days=405),
        renews=agreement,
    )
    ended = AgreementFactory(
        partner=cast.partner_b,
        start_date=today - timedelta(days=100),
        end_date=today + timedelta(days=200),
    )
    Agreement.objects.filter(pk=ended.pk).update(
        status="terminated", terminated_on=today, termination_reason="合并"
    )
    accounts = []
    for number in range(3):
        account = AccountFactory(
            name=f"客户{number}",
            region=east,
            vertical=finance,
            entered_on=today - timedelta(days=400),
            converted_on=today - timedelta(days=2) if number == 0 else None,
            converted_via="direct" if number == 0 else "",
        )
        accounts.append(account)
    CoverageAssignment.objects.create(
        account=accounts[0], kind="direct", rep=cast.rep, start_date=today - timedelta(days=3)
    )
    CoverageAssignment.objects.create(
        account=accounts[1], kind="partner", partner=cast.partner_a, start_date=today
    )
    CoverageAssignment.objects.create(
        account=accounts[2], kind="partner", partner=cast.partner_b, start_date=today
    )
    feedback = FeedbackFactory(partner=cast.partner_a, subject="文档太少", body="需要中文文档。")
    feedback.attachment.save("a.png", SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n0000"))
    FeedbackReplyFactory(feedback=feedback, author=cast.manager, body="下月发布。")
    FeedbackNoteFactory(feedback=feedback, author=cast.manager, body="内部备注")
    FeedbackFactory(partner=cast.partner_a, subject="等待答复", body="请回复。")
    PartnerContactFactory(partner=cast.partner_a, name="李雷", title="销售总监")
    invitee = PartnerUserFactory(user__username="invitee@partner.example", partner=cast.partner_a)
    invitee.user.set_unusable_password()
    invitee.user.save()
    job = ImportJob.objects.create(
        folder="zh-job",
        file_names=["regions.csv"],
        status="invalid",
        problems=["regions.csv:2: code: required"],
    )
    opportunity = OpportunityFactory(
        account=accounts[1],
        name="核心平台",
        channel="partner",
        partner=cast.partner_a,
        opened_on=today - timedelta(days=30),
    )
    opportunity_change(
        opportunity=opportunity,
        sub_stage=OpportunitySubStage.objects.get(code="propose"),
        by=cast.manager,
    )
    won = OpportunityFactory(
        account=accounts[0],
        name="年度订阅",
        rep=cast.rep,
        recurring=True,
        opened_on=today - timedelta(days=60),
    )
    opportunity_win(opportunity=won, closed_on=today - timedelta(days=20), by=cast.manager)
    last_week = timezone.localdate() - timedelta(days=7)
    from analytics.metrics import iso_week_of

    call_command(
        "compute_metrics", "--week", iso_week_of(last_week), "--no-progress", stdout=io.StringIO()
    )
    call_command("compute_metrics", "--last", "1", "--no-progress", stdout=io.StringIO())
    return {
        "agreement": agreement,
        "draft": draft,
        "ended": ended,
        "account": accounts[1],
        "feedback": feedback,
        "job": job,
        "invitee": invitee.user,
        "opportunity": opportunity,
        "won": won,
        "known": {
            cast.manager.get_username(),
            cast.rep_user.get_username(),
            cast.executive.get_username(),
            cast.partner_a_user.get_username(),
            "invitee@partner.example",
        },
    }


def _client(user: Any = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = LOCALE
    return client


def _pages(cast: Cast, world: dict[str, Any]) -> Iterator[tuple[str, Any, str]]:
    agreement, draft, ended = world["agreement"], world["draft"], world["ended"]
    manager = [
        "/workspace/",
        "/workspace/accounts/",
        "/workspace/accounts/?coverage=outside&partner=" + str(cast.partner_a.pk),
        f"/workspace/accounts/{world['account'].pk}/",
        "/workspace/white-space/",
        "/workspace/partners/",
        "/workspace/distributors/",
        "/workspace/partners/new/",
        f"/workspace/partners/{cast.partner_a.pk}/",
        f"/workspace/partners/{cast.partner_a.pk}/edit/",
        "/workspace/reps/",
        "/workspace/agreements/",
        "/workspace/agreements/new/",
        "/workspace/agreements/renewals-due/",
        "/workspace/agreements/renewals-due/?by=notice&within=60",
        f"/workspace/agreements/{agreement.pk}/",
        f"/workspace/agreements/{draft.pk}/",
        f"/workspace/agreements/{ended.pk}/",
        f"/workspace/agreements/{draft.pk}/edit/",
        f"/workspace/agreements/{draft.pk}/activate/",
        f"/workspace/agreements/{draft.pk}/discard/",
        f"/workspace/agreements/{agreement.pk}/terminate/",
        f"/workspace/agreements/{agreement.pk}/renew/",
        f"/workspace/agreements/{ended.pk}/renew/",
        "/workspace/feedback/",
        "/workspace/feedback/log/",
        f"/workspace/feedback/{world['feedback'].pk}/",
        "/workspace/imports/",
        f"/workspace/imports/{world['job'].pk}/",
        "/dashboard/",
        "/dashboard/?heat=penetration&channel=partner&region=east",
        "/dashboard/digest/",
        f"/dashboard/partners/{cast.partner_a.pk}/health/",
        "/workspace/opportunities/",
        "/workspace/opportunities/?stage=won",
        "/workspace/opportunities/board/",
        "/workspace/opportunities/new/",
        f"/workspace/opportunities/{world['opportunity'].pk}/",
        f"/workspace/opportunities/{world['won'].pk}/",
        "/workspace/no-such-page/",
    ]
    for path in manager:
        yield "manager", cast.manager, path
    for path in ["/workspace/", "/workspace/my-accounts/", "/workspace/accounts/"]:
        yield "rep", cast.rep_user, path
    yield "executive", cast.executive, "/dashboard/"
    portal = [
        "/portal/",
        "/portal/agreements/",
        "/portal/accounts/",
        "/portal/feedback/",
        "/portal/feedback/new/",
        f"/portal/feedback/{world['feedback'].pk}/",
        "/portal/profile/",
        "/portal/opportunities/",
        f"/portal/opportunities/{world['opportunity'].pk}/",
        "/portal/no-such-page/",
    ]
    for path in portal:
        yield "partner", cast.partner_a_user, path
    for path in ["/accounts/login/", invitation_path(world["invitee"]), "/portal/invitation/x/y/"]:
        yield "anonymous", None, path


def test_every_page_shows_no_english_template_text_in_chinese(
    cast: Cast, chinese_world: dict[str, Any]
) -> None:
    found: dict[str, list[str]] = {}
    pages = 0
    for who, user, path in _pages(cast, chinese_world):
        response = _client(user).get(path)
        assert response.status_code in (200, 400, 404), (who, path, response.status_code)
        html = response.content.decode()
        assert 'lang="zh-hans"' in html, (who, path)
        left = untranslated(html, chinese_world["known"])
        if left:
            found[f"{who} {path}"] = sorted(set(left))
        pages += 1
    assert pages > 40
    assert not found, "\n".join(f"{page}: {texts}" for page, texts in found.items())


def test_the_bulk_assign_confirmation_and_messages_are_in_chinese(
    cast: Cast, chinese_world: dict[str, Any]
) -> None:
    client = _client(cast.manager)
    data = {
        "scope": "filter",
        "filter-region": "east",
        "kind": "partner",
        "partner": cast.partner_a.pk,
        "start_date": timezone.localdate().isoformat(),
        "next": "/workspace/accounts/",
    }
    confirm = client.post("/workspace/coverage/assign/", data)
    assert not untranslated(confirm.content.decode(), chinese_world["known"])
    done = client.post(
        "/workspace/coverage/assign/",
        {**data, "confirmed_count": str(confirm.context["count"])},
        follow=True,
    )
    assert not untranslated(done.content.decode(), chinese_world["known"])


def test_the_emails_are_in_chinese(cast: Cast, chinese_world: dict[str, Any]) -> None:
    from analytics import digest
    from analytics.reports import week_options
    from partners.services import feedback_reply, portal_user_invite

    week = week_options()[-1].week
    with translation.override(LOCALE):
        content = digest.digest_content(week=week)
        bodies = [
            render_to_string("emails/digest.html", {"digest": content}),
            render_to_string("emails/digest.txt", {"digest": content}),
        ]
        feedback_reply(feedback=chinese_world["feedback"], author=cast.manager, body="好的。")
        portal_user_invite(partner=cast.partner_a, email="new@partner.example", by=cast.manager)
    from crm.models import OutboundEmail

    for email in OutboundEmail.objects.all():
        bodies += [email.subject, email.body_text, email.body_html]
    known = chinese_world["known"] | {"new@partner.example"}
    left = {text for body in bodies for text in untranslated(f"<p>{body}</p>", known)}
    assert not left, left


@pytest.mark.parametrize(
    "path",
    [
        "/workspace/accounts/?format=csv",
        "/workspace/agreements/?format=csv",
        "/workspace/feedback/?format=csv&status=all",
        "/workspace/partners/?format=csv",
        "/workspace/reps/?format=csv",
        "/dashboard/export/headlines.csv",
        "/dashboard/export/trend.csv",
        "/dashboard/export/channels.csv",
        "/dashboard/export/heatmap.csv",
        "/dashboard/export/white_space.csv",
        "/dashboard/export/partners.csv",
        "/dashboard/export/feedback.csv",
    ],
)
def test_every_export_header_is_in_chinese(
    cast: Cast, chinese_world: dict[str, Any], path: str
) -> None:
    response = _client(cast.manager).get(path)
    body = b"".join(response.streaming_content).decode()
    header = next(csv.reader(io.StringIO(body)))
    left = [cell for cell in header if LATIN_WORD.search(ALLOWED.sub(" ", cell))]
    assert not left, left


def test_the_error_page_is_in_chinese(cast: Cast) -> None:
    with translation.override(LOCALE):
        html = render_to_string("500.html")
    assert not untranslated(html, set())


def test_it_reports_english_left_on_a_page() -> None:
    assert untranslated("<p>合作伙伴 · Partners</p><a title='Open'>打开</a>", set()) == [
        "合作伙伴 · Partners",
        "Open",
    ]
    assert untranslated("<p>AGR-1A2B3C4D · 2026-W48 · NPS · a@b.example</p>", set()) == []


def test_the_compiled_catalogue_holds_every_translation_of_the_source() -> None:
    import gettext
    from pathlib import Path

    folder = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
    with open(folder / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    source = (folder / "django.po").read_text(encoding="utf-8")
    pairs = re.findall(r'^msgid "(.+)"\nmsgstr "(.+)"$', source, flags=re.M)
    assert len(pairs) > 300
    stale = [
        msgid for msgid, msgstr in pairs if compiled.gettext(_unquote(msgid)) != _unquote(msgstr)
    ]
    assert not stale, f"run compilemessages: {stale[:5]}"


def _unquote(text: str) -> str:
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
