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
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.template.loader import render_to_string
from django.test import Client
from django.urls import Resolver404, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone, translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from channels.models import CoverageAssignment, OpportunitySubStage
from crm.models import Region, Vertical
from partners.models import Agreement, ImportJob, Tier
from partners.opportunity_services import opportunity_change, opportunity_win
from partners.programme_services import certification_add, target_set
from partners.registration_models import DealRegistration
from partners.registration_services import (
    DealDetails,
    registration_approve,
    registration_extend,
    registration_link_account,
    registration_mark_won,
    registration_reject,
    registration_request_extension,
    registration_submit,
    registration_withdraw,
    registrations_expire,
)
from partners.review_services import (
    business_review_open,
    business_review_record,
    review_action_add,
)
from partners.survey_services import (
    SurveyAnswer,
    SurveyValues,
    survey_create,
    survey_link_token,
    survey_response_submit,
    survey_wave_open,
)
from partners.webhook_models import WebhookDelivery
from partners.webhooks import SUBSCRIBABLE, webhook_endpoint_create
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    CurrencyRateFactory,
    FeedbackFactory,
    FeedbackNoteFactory,
    FeedbackReplyFactory,
    OpportunityFactory,
    PartnerContactFactory,
    PartnerUserFactory,
    tier_change_made,
)

# What a page says in Chinese does not depend on the database engine.
pytestmark = pytest.mark.engine_neutral

LOCALE = "zh-hans"

# What may stay in Latin letters on a Chinese page.
ALLOWED = re.compile(
    r"""
      [\w.+-]+@[\w.-]+\.\w+                      # e-mail addresses
    | https?://\S+                               # addresses
    | \b[\w-]+\.(?:com|cn|org|net|example)\b      # domains: example.com
    | \b\d{4}-W\d{2}\b                           # ISO weeks
    | \b[A-Za-z]+(?:[-_][A-Za-z0-9]+)*-\d[\w-]*  # ids: AGR-1A2B3C4D, ACC-0000012, P-0003
    | \b[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+\b      # codes: P-ALPHA, AG-HIST
    | \b(?:NPS|MRR|ARPA|CSV|XLSX|PDF|PNG|JPEG|API|ISO|OEM|SMB|USD|EUR|CNY|ID|MB|UTF-8)\b
    | \b(?:JSON|POST|HTTPS?|HMAC-SHA256)\b
    | Channel\ CRM | English | Redoc | Swagger | Webhook | Ctrl | Mac | yyyy-mm-dd
    | \bpp\b                                     # percentage points
    """,
    re.X,
)
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# A day written as ISO (2026-12-05) where pages write "2026年12月5日" (README, formats).
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


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


def iso_days(text: str) -> list[str]:
    """The strings of `text` (HTML) a reader sees with a day written as ISO."""
    parser = VisibleText()
    parser.feed(text)
    return [piece for piece in parser.texts if ISO_DAY.search(piece)]


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
    # Its deals are in renminbi: an approved registration becomes an opportunity, converted.
    CurrencyRateFactory(currency="CNY", rate_to_reporting=Decimal("0.14"))
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
        problems=["regions.csv:2: code: 必填"],
        language=LOCALE,
    )
    registrations = _registrations_in_chinese(cast, east, finance, accounts)
    tier_change = tier_change_made(
        partner=cast.partner_a, tier="silver", by=cast.manager, reason="战略伙伴"
    )
    certification_add(partner=cast.partner_a, name="云架构认证", earned_on=today)
    target_set(year=today.year, partner=cast.partner_a, accounts_covered=5, conversions=2)
    target_set(year=today.year, rep=cast.rep, accounts_covered=3)
    survey = survey_create(
        values=SurveyValues(
            name="季度调查",
            categories=["support", "pricing"],
            intro="请花两分钟。",
            free_text_question="我们应如何改进？",
        ),
        by=cast.manager,
    )
    PartnerContactFactory(partner=cast.partner_a, name="韩梅梅", title="渠道经理")
    wave = survey_wave_open(survey=survey, opens_on=today).wave
    answered, waiting = wave.invitations.order_by("id")[:2]
    survey_response_submit(
        invitation=answered, answer=SurveyAnswer({"support": 4}, nps=9, comment="很好。")
    )
    review = business_review_open(
        partner=cast.partner_a, year=today.year, quarter=(today.month - 1) // 3 + 1, by=cast.manager
    )
    review = business_review_record(
        review=review, held_on=today, attendees="李雷、林美", notes="回顾本季度。"
    )
    review_action_add(review=review, description="培训销售", due_on=today, owner=cast.manager)
    review_action_add(review=review, description="提交计划", due_on=today, partner_owner="李雷")
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
        **registrations,
        "tier_change": tier_change,
        "survey": survey,
        "wave": wave,
        "survey_link": f"/survey/{survey_link_token(waiting)}/",
        "review": review,
        "opportunity": opportunity,
        "won": won,
        "known": {
            *Tier.objects.values_list("code", flat=True),  # codes, like P-ALPHA
            cast.manager.get_username(),
            cast.rep_user.get_username(),
            cast.executive.get_username(),
            cast.partner_a_user.get_username(),
            cast.partner_b_user.get_username(),
            "invitee@partner.example",
        },
    }


def _registrations_in_chinese(
    cast: Cast, east: Region, finance: Vertical, accounts: list[Any]
) -> dict[str, Any]:
    """Deal registrations in every state a page shows (conflicts of each kind, approved with an
    extension asked, extended and won, rejected, expired, a manager's link), registered in
    Chinese, and a webhook endpoint with a delivery of each state."""
    today = timezone.localdate()
    endpoint = webhook_endpoint_create(
        url="https://hooks.example.com/crm",
        secret="s" * 20,
        events=[event.value for event in SUBSCRIBABLE],
        description="集成测试",
        by=cast.manager,
    )
    later = AccountFactory(
        name="客户3", region=east, vertical=finance, entered_on=today - timedelta(days=400)
    )

    def register(user: Any, company: str, **extra: Any) -> DealRegistration:
        details = DealDetails(
            company_name=company,
            region=east,
            vertical=finance,
            size_band=accounts[0].size_band,
            offering="模型接口",
            amount=Decimal("120000"),
            currency="CNY",
            expected_close_on=today + timedelta(days=60),
            description="理赔团队试点。",
            contact_name="王芳",
            **extra,
        )
        with translation.override(LOCALE):
            return registration_submit(user=user, details=details)

    conflicting = register(cast.partner_a_user, "客户0")
    duplicate = register(cast.partner_a_user, "客户0")
    registration_link_account(registration=duplicate, by=cast.manager, account=None)
    approved = registration_approve(
        registration=register(cast.partner_a_user, "客户1"), by=cast.manager, reason="同意。"
    )
    registration_request_extension(
        registration=approved, user=cast.partner_a_user, note="客户董事会三月开会。"
    )
    rival = register(cast.partner_b_user, "客户1")
    won = registration_approve(registration=register(cast.partner_a_user, "客户2"), by=cast.manager)
    registration_extend(registration=won, by=cast.manager)
    registration_mark_won(
        registration=won, by=cast.manager, amount=Decimal("98000"), closed_on=today
    )
    rejected = registration_reject(
        registration=register(cast.partner_a_user, "新公司"), by=cast.manager, reason="不在范围内。"
    )
    expired = registration_approve(
        registration=register(cast.partner_a_user, "客户3"),
        by=cast.manager,
        protected_days=1,
        today=today - timedelta(days=5),
    )
    registrations_expire(today=today)
    deliveries = list(WebhookDelivery.objects.order_by("id")[:2])
    WebhookDelivery.objects.filter(pk=deliveries[0].pk).update(
        status="delivered", attempts=1, response_status=200, delivered_at=timezone.now()
    )
    WebhookDelivery.objects.filter(pk=deliveries[1].pk).update(
        status="failed", attempts=8, response_status=500, last_error="HTTP 500 Internal Error"
    )
    assert later.pk == expired.account_id
    return {
        "registrations": [conflicting, duplicate, approved, rival, won, rejected, expired],
        "partner_a_registrations": [conflicting, duplicate, approved, won, rejected, expired],
        "endpoint": endpoint,
        "accounts": accounts,
    }


def _client(user: Any = None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = LOCALE
    return client


# Not pages: the API (JSON, and its schema viewers, which are Swagger's and Redoc's own), the
# language switch, the health check and the admin (Django's own, translated by Django).
NOT_PAGES_UNDER = ("admin/", "api/", "i18n/", "health/")
# Downloads: files, not pages (the dashboard's CSV headers are checked below).
DOWNLOADS = {
    "partners:agreement_document",
    "partners:import_job_problems",
    "portal:agreement_document",
    "portal:feedback_attachment",
    "analytics:dashboard_export",
}
# JSON for the pages' searchable selects (names the user sees, no template text).
JSON_ENDPOINTS = {"partners:partner_choices", "partners:rep_choices"}
# The site's root only sends each role to its home.
REDIRECTS = {"home"}


def _routes() -> Iterator[tuple[str, str, list[str]]]:
    """Every named route of the site: (name, route, its parameters)."""

    def walk(patterns: list[Any], prefix: str, namespace: str) -> Iterator[Any]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
            elif pattern.name:
                route = prefix + str(pattern.pattern)
                yield namespace + pattern.name, route, list(pattern.pattern.converters)

    seen = set()
    for name, route, parameters in walk(get_resolver().url_patterns, "", ""):
        if (
            route.startswith(NOT_PAGES_UNDER)
            or name in DOWNLOADS | REDIRECTS | JSON_ENDPOINTS
            or name in seen
        ):
            continue
        seen.add(name)
        yield name, route, parameters


def _objects(cast: Cast, world: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The pages that show one object, with the objects to show: every other route is walked
    without any (a route with parameters that is missing here fails the walk, unless it only
    takes a POST)."""
    agreement, draft, ended = world["agreement"], world["draft"], world["ended"]
    invitee = world["invitee"]
    uid = urlsafe_base64_encode(force_bytes(invitee.pk))
    partner = [{"pk": cast.partner_a.pk}]
    registrations = [{"pk": r.pk} for r in world["registrations"]]
    return {
        "partners:partner_detail": partner,
        "partners:partner_edit": partner,
        "partners:agreement_detail": [{"pk": a.pk} for a in (agreement, draft, ended)],
        "partners:agreement_edit": [{"pk": draft.pk}],
        "partners:agreement_activate": [{"pk": draft.pk}],
        "partners:agreement_discard": [{"pk": draft.pk}],
        "partners:agreement_terminate": [{"pk": agreement.pk}],
        "partners:agreement_renew": [{"pk": agreement.pk}, {"pk": ended.pk}],
        "partners:feedback_detail": [{"pk": world["feedback"].pk}],
        "partners:account_detail": [{"pk": a.pk} for a in world["accounts"]],
        "partners:import_job": [{"pk": world["job"].pk}],
        "registrations:detail": registrations,
        "registrations:partner_registrations": partner,
        "registrations:webhook_detail": [{"pk": world["endpoint"].pk}],
        "survey:answer": [{"token": world["survey_link"].strip("/").split("/")[-1]}],
        "programme:tier_edit": [{"pk": Tier.objects.get(code="silver").pk}],
        "programme:change": [{"pk": world["tier_change"].pk}],
        "programme:partner_card": partner,
        "programme:survey_detail": [{"pk": world["survey"].pk}],
        "programme:survey_edit": [{"pk": world["survey"].pk}],
        "programme:wave_detail": [{"pk": world["wave"].pk}],
        "programme_figures:partner_scorecard": partner,
        "programme_figures:review": [{"pk": world["review"].pk}],
        "portal:feedback_detail": [{"pk": world["feedback"].pk}],
        "portal:invitation": [
            {"uidb64": uid, "token": default_token_generator.make_token(invitee)},
            {"uidb64": "x", "token": "y"},
        ],
        "portal_registrations:detail": [{"pk": r.pk} for r in world["partner_a_registrations"]],
        "opportunities:detail": [{"pk": world["opportunity"].pk}, {"pk": world["won"].pk}],
        "opportunities:action": [{"pk": world["opportunity"].pk, "action": "move"}],
        "portal_opportunities:detail": [{"pk": world["opportunity"].pk}],
        "analytics:partner_health": partner,
        "password_reset_confirm": [
            {"uidb64": uid, "token": default_token_generator.make_token(invitee)},
            {"uidb64": "x", "token": "y"},
        ],
    }


# Pages again with a query that shows more of them.
QUERIES = {
    "partners:account_list": ["?coverage=outside&partner={partner}"],
    "partners:renewals_due": ["?by=notice&within=60"],
    "analytics:dashboard": ["?heat=penetration&channel=partner&region=east"],
    "registrations:queue": [
        "?status=",
        "?status=open&conflict=any",
        "?overdue=soon",
        "?status=&account={account}",
    ],
    "registrations:webhooks": ["?status=failed"],
    "opportunities:list": ["?stage=won"],
    "portal_registrations:list": ["?status=approved"],
}


def _paths(
    name: str, parameters: list[str], objects: dict[str, list[dict[str, Any]]], world: Any
) -> list[str]:
    if name in objects:
        paths = [reverse(name, kwargs=kwargs) for kwargs in objects[name]]
    elif parameters:
        # No object: only a POST-only route answers (405) whatever it is given.
        paths = [reverse(name, kwargs={parameter: "1" for parameter in parameters})]
    else:
        paths = [reverse(name)]
    fill = {"partner": world["partner"], "account": world["accounts"][0].pk}
    return paths + [paths[0] + query.format(**fill) for query in QUERIES.get(name, [])]


def _view_name(location: str) -> str:
    try:
        return resolve(urlsplit(location).path).view_name
    except Resolver404:
        return ""


def test_every_page_each_role_can_open_shows_no_english_template_text_in_chinese(
    cast: Cast, chinese_world: dict[str, Any]
) -> None:
    """Walks every route of the site as every role: each HTML page a role opens is checked.
    A route nobody could open as a page (a new page without its objects above) fails."""
    users = {
        "manager": cast.manager,
        "rep": cast.rep_user,
        "executive": cast.executive,
        "partner": cast.partner_a_user,
        "anonymous": None,
    }
    clients = {who: _client(user) for who, user in users.items()}
    world = {**chinese_world, "partner": cast.partner_a.pk}
    objects = _objects(cast, chinese_world)
    found: dict[str, list[str]] = {}
    opened: dict[str, set[str]] = {}
    pages = 0
    for name, _route, parameters in _routes():
        for path in _paths(name, parameters, objects, world):
            for who, client in clients.items():
                response = client.get(path)
                if response.status_code == 302 and _view_name(response["Location"]) == name:
                    response = client.get(response["Location"])  # a page's own next step
                if response.status_code == 405:
                    opened.setdefault(name, set()).add("post")
                if response.status_code not in (200, 400):
                    continue
                assert response["Content-Type"].startswith("text/html"), (who, path)
                html = response.content.decode()
                assert 'lang="zh-hans"' in html or "<html" not in html, path
                left = untranslated(html, chinese_world["known"]) + iso_days(html)
                if left:
                    found[f"{who} {path}"] = sorted(set(left))
                opened.setdefault(name, set()).add(who)
                pages += 1
    never = [name for name, _route, _parameters in _routes() if name not in opened]
    assert not never, f"no role could open these: give them objects in _objects(): {never}"
    for who, path in (("manager", "/workspace/no-such-page/"), ("partner", "/portal/x/")):
        html = clients[who].get(path).content.decode()
        if left := untranslated(html, chinese_world["known"]):
            found[f"{who} {path}"] = sorted(set(left))
    assert pages > 150
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


def test_the_registration_decisions_and_their_refusals_are_in_chinese(
    cast: Cast, chinese_world: dict[str, Any]
) -> None:
    """A decision form sent with bad input, a decision the registration's state refuses, a
    decision done, a webhook endpoint refused and added, and the partner's form with bad
    input: each page and message in Chinese."""
    manager, partner = _client(cast.manager), _client(cast.partner_a_user)
    conflicting, _duplicate, approved, rival = chinese_world["registrations"][:4]
    known = chinese_world["known"]
    answers = {
        "reject without a reason": manager.post(
            f"/workspace/registrations/{conflicting.pk}/reject/", {"reject-reason": ""}
        ),
        "approve what another protects": manager.post(
            f"/workspace/registrations/{rival.pk}/approve/", {}
        ),
        "won in the future": manager.post(
            f"/workspace/registrations/{approved.pk}/won/",
            {"won-amount": "10", "won-closed_on": "2999-01-01"},
        ),
        "approve": manager.post(
            f"/workspace/registrations/{conflicting.pk}/approve/", {}, follow=True
        ),
        "a plain-HTTP endpoint": manager.post(
            "/workspace/webhooks/",
            {"url": "http://hooks.example.com/x", "secret": "short", "events": []},
        ),
        "an endpoint added": manager.post(
            "/workspace/webhooks/",
            {
                "url": "https://hooks.example.com/y",
                "secret": "s" * 20,
                "events": [event.value for event in SUBSCRIBABLE],
            },
            follow=True,
        ),
        "register with bad input": partner.post(
            "/portal/registrations/new/", {"company_name": "", "currency": "EURO"}
        ),
        "withdraw what is closed": partner.post(
            f"/portal/registrations/{chinese_world['registrations'][5].pk}/withdraw/", {}
        ),
    }
    statuses = {what: answer.status_code for what, answer in answers.items()}
    assert statuses == {
        "reject without a reason": 400,
        "approve what another protects": 409,
        "won in the future": 400,
        "approve": 200,
        "a plain-HTTP endpoint": 400,
        "an endpoint added": 200,
        "register with bad input": 400,
        "withdraw what is closed": 409,
    }
    left = {
        what: untranslated(answer.content.decode(), known)
        for what, answer in answers.items()
        if untranslated(answer.content.decode(), known)
    }
    assert not left, left


def test_the_emails_are_in_chinese(
    cast: Cast, chinese_world: dict[str, Any], settings: Any
) -> None:
    """Partners are written to in the language they registered in (Chinese here), the channel
    team in the workspace's language (made Chinese here)."""
    from analytics import digest
    from analytics.reports import week_options
    from crm.models import OutboundEmail
    from partners.services import feedback_reply, portal_user_invite

    # The world's e-mails to the channel team went out in English, the workspace's language.
    OutboundEmail.objects.filter(topic__startswith="reg-").delete()
    settings.LANGUAGE_CODE = LOCALE
    conflicting, approved = chinese_world["registrations"][0], chinese_world["registrations"][2]
    registration_withdraw(registration=conflicting, user=cast.partner_a_user, reason="")
    registration_withdraw(registration=approved, user=cast.partner_a_user, reason="客户暂停。")
    rival = registration_approve(registration=chinese_world["registrations"][3], by=cast.manager)
    registration_request_extension(registration=rival, user=cast.partner_b_user, note="")
    with translation.override("en"):  # whoever registers, the channel team reads its language
        registration_submit(
            user=cast.partner_b_user,
            details=DealDetails(
                company_name="客户0",
                region=conflicting.region,
                vertical=conflicting.vertical,
                size_band=conflicting.size_band,
            ),
        )
    assert OutboundEmail.objects.filter(topic__startswith="reg-").count() == 4
    week = week_options()[-1].week
    with translation.override(LOCALE):
        content = digest.digest_content(week=week)
        bodies = [
            render_to_string("emails/digest.html", {"digest": content}),
            render_to_string("emails/digest.txt", {"digest": content}),
        ]
        feedback_reply(feedback=chinese_world["feedback"], author=cast.manager, body="好的。")
        portal_user_invite(partner=cast.partner_a, email="new@partner.example", by=cast.manager)
    # The programme's e-mails to partners carry an English and a Chinese part (checked below).
    bilingual = ["survey-invitation", "survey-reminder", "business-review-summary"]
    for email in OutboundEmail.objects.exclude(topic__in=bilingual):
        bodies += [email.subject, email.body_text, email.body_html]
    known = chinese_world["known"] | {"new@partner.example"}
    left = {text for body in bodies for text in untranslated(f"<p>{body}</p>", known)}
    assert not left, left


def test_the_programme_emails_carry_a_chinese_part(
    cast: Cast, chinese_world: dict[str, Any]
) -> None:
    """The survey invitation (and its reminder) and the business review's summary go out in
    English and Chinese in one e-mail: the Chinese part holds no English template text."""
    from analytics.programme_views import review_scorecard
    from analytics.review_summary import review_summary_send
    from crm.models import OutboundEmail
    from partners.survey_services import survey_reminders_send

    review = chinese_world["review"]
    review_summary_send(review=review, scorecard=review_scorecard(review))
    wave = chinese_world["wave"]
    assert survey_reminders_send(today=wave.closes_on) >= 1
    topics = set()
    for email in OutboundEmail.objects.filter(
        topic__in=["survey-invitation", "survey-reminder", "business-review-summary"]
    ):
        topics.add(email.topic)
        english, chinese = email.body_text.split("\n\n———\n\n")
        assert english.strip() and chinese.strip()
        left = untranslated(f"<p>{chinese}</p>", chinese_world["known"])
        assert not left, (email.topic, left)
    assert topics == {"survey-invitation", "survey-reminder", "business-review-summary"}


@pytest.mark.parametrize(
    "path",
    [
        "/workspace/accounts/?format=csv",
        "/workspace/agreements/?format=csv",
        "/workspace/feedback/?format=csv&status=all",
        "/workspace/partners/?format=csv",
        "/workspace/reps/?format=csv",
        "/workspace/registrations/?format=csv&status=",
        "/dashboard/export/headlines.csv",
        "/dashboard/export/trend.csv",
        "/dashboard/export/channels.csv",
        "/dashboard/export/heatmap.csv",
        "/dashboard/export/white_space.csv",
        "/dashboard/export/partners.csv",
        "/dashboard/export/feedback.csv",
        "/dashboard/export/revenue_headlines.csv",
        "/dashboard/export/revenue_channels.csv",
        "/dashboard/export/revenue_trend.csv",
        "/dashboard/export/revenue_white_space.csv",
        "/dashboard/export/revenue_forecast.csv",
        "/dashboard/export/revenue_partners.csv",
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


def test_it_reports_a_day_written_as_iso() -> None:
    page = "<p>截止 2026-12-05</p><p>2026年12月5日 · 2026-W48</p><input value='2026-12-05'>"
    assert iso_days(page) == ["截止 2026-12-05"]


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
