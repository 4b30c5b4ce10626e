"""Bad input everywhere: arbitrary values posted to every form, and arbitrary CSV cells fed
to the importer. Never a server error; either a clear message or success; nothing half saved.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import Model
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from channels.models import CoverageAssignment, Opportunity, OpportunityEvent
from crm.models import Account, OutboundEmail, Region, Vertical
from partners.market_import import MarketImportError, market_import
from partners.models import (
    Agreement,
    DealRegistration,
    DealRegistrationEvent,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    ImportJob,
    Partner,
    PartnerContact,
    Tier,
    WebhookDelivery,
    WebhookEndpoint,
)
from partners.programme_models import (
    BusinessReview,
    Certification,
    ReviewAction,
    Survey,
    SurveyResponse,
    Target,
    TierChange,
)
from partners.review_services import business_review_open
from partners.survey_services import (
    SurveyValues,
    survey_create,
    survey_link_token,
    survey_wave_open,
)
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    OpportunityFactory,
    PartnerContactFactory,
)

COUNTED: list[type[Model]] = [
    Account,
    Opportunity,
    OpportunityEvent,
    DealRegistration,
    DealRegistrationEvent,
    Tier,
    WebhookDelivery,
    WebhookEndpoint,
    Agreement,
    CoverageAssignment,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    ImportJob,
    OutboundEmail,
    Partner,
    PartnerContact,
    Region,
    Vertical,
    BusinessReview,
    Certification,
    ReviewAction,
    Survey,
    SurveyResponse,
    Target,
    TierChange,
]
# Deterministic examples (same run in CI as on a laptop) and no shrinking: a failure prints
# the input that broke, which is what matters here.
HYPOTHESIS = settings(
    max_examples=10,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values people and attackers type: empty, huge, wrong type, markup, path-like, unicode, SQL.
nasty_text = st.one_of(
    st.just(""),
    st.text(max_size=40),
    st.text(min_size=5001, max_size=5200),
    st.sampled_from(
        [
            "-1",
            "0",
            "99999999999999999999",
            "1e309",
            "NaN",
            "2026-02-30",
            "31/12/2026",
            "<script>alert(1)</script>",
            "../../etc/passwd",
            "' OR 1=1 --",
            "\x00",
            "null",
            "true",
            "9" * 30,
            "项目",
            "🙂",
        ]
    ),
)


def _counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in COUNTED}


def _client(user: Any) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


FORMS: dict[str, tuple[str, Callable[[Cast, dict[str, Any]], str], list[str]]] = {
    # name: (user attribute on the cast, url builder, field names)
    "agreement_create": (
        "manager",
        lambda c, o: "/workspace/agreements/new/",
        [
            "partner",
            "agreement_type",
            "start_date",
            "end_date",
            "regions",
            "verticals",
            "exclusive",
            "notice_days",
            "discount_percent",
            "revenue_share_percent",
            "annual_target",
            "currency",
            "responsibilities",
            "rights",
        ],
    ),
    "agreement_edit": (
        "manager",
        lambda c, o: f"/workspace/agreements/{o['draft'].pk}/edit/",
        ["agreement_type", "start_date", "end_date", "notice_days", "currency", "regions"],
    ),
    "agreement_activate": (
        "manager",
        lambda c, o: f"/workspace/agreements/{o['draft'].pk}/activate/",
        ["signed_on"],
    ),
    "agreement_terminate": (
        "manager",
        lambda c, o: f"/workspace/agreements/{o['active'].pk}/terminate/",
        ["terminated_on", "reason"],
    ),
    "partner_create": (
        "manager",
        lambda c, o: "/workspace/partners/new/",
        ["name", "external_id", "channel_kind", "partner_type", "tier", "website", "country"],
    ),
    "partner_edit": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/edit/",
        ["name", "external_id", "channel_kind", "partner_type", "tier", "website"],
    ),
    "contact_add": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/contacts/",
        ["name", "title", "email", "phone", "is_primary"],
    ),
    "invite": ("manager", lambda c, o: f"/workspace/partners/{c.partner_a.pk}/invite/", ["email"]),
    "feedback_log": (
        "manager",
        lambda c, o: "/workspace/feedback/log/",
        ["partner", "category", "satisfaction", "nps", "subject", "body"],
    ),
    "feedback_triage": (
        "manager",
        lambda c, o: f"/workspace/feedback/{o['feedback'].pk}/triage/",
        ["status", "assignee"],
    ),
    "feedback_reply": (
        "manager",
        lambda c, o: f"/workspace/feedback/{o['feedback'].pk}/reply/",
        ["reply-body"],
    ),
    "feedback_note": (
        "manager",
        lambda c, o: f"/workspace/feedback/{o['feedback'].pk}/note/",
        ["note-body"],
    ),
    "coverage_assign": (
        "manager",
        lambda c, o: "/workspace/coverage/assign/",
        [
            "scope",
            "account",
            "kind",
            "rep",
            "partner",
            "online_source",
            "start_date",
            "end_date",
            "region",
        ],
    ),
    "coverage_end": (
        "manager",
        lambda c, o: f"/workspace/coverage/{o['coverage'].pk}/end/",
        ["end_date"],
    ),
    "portal_feedback": (
        "partner_a_user",
        lambda c, o: "/portal/feedback/new/",
        ["category", "satisfaction", "nps", "subject", "body"],
    ),
    "portal_follow_up": (
        "partner_a_user",
        lambda c, o: f"/portal/feedback/{o['feedback'].pk}/",
        ["body"],
    ),
    "portal_password": (
        "partner_a_user",
        lambda c, o: "/portal/profile/",
        ["old_password", "new_password1", "new_password2"],
    ),
    "portal_registration": (
        "partner_a_user",
        lambda c, o: "/portal/registrations/new/",
        [
            "company_name",
            "website",
            "account",
            "region",
            "vertical",
            "size_band",
            "offering",
            "amount",
            "currency",
            "expected_close_on",
            "description",
            "contact_name",
            "contact_email",
            "contact_phone",
        ],
    ),
    "portal_registration_withdraw": (
        "partner_a_user",
        lambda c, o: f"/portal/registrations/{o['registration'].pk}/withdraw/",
        ["withdraw-reason"],
    ),
    "portal_registration_extend": (
        "partner_a_user",
        lambda c, o: f"/portal/registrations/{o['approved'].pk}/extend/",
        ["extend-note"],
    ),
    **{
        f"registration_{action}": (
            "manager",
            lambda c, o, action=action: (
                f"/workspace/registrations/{o['registration'].pk}/{action}/"
            ),
            fields,
        )
        for action, fields in {
            "approve": ["approve-protected_days", "approve-reason"],
            "reject": ["reject-reason"],
            "account": ["link-account"],
        }.items()
    },
    **{
        f"registration_{action}": (
            "manager",
            lambda c, o, action=action: f"/workspace/registrations/{o['approved'].pk}/{action}/",
            fields,
        )
        for action, fields in {
            "won": ["won-amount", "won-closed_on"],
            "lost": ["lost-reason"],
            "extend": ["extend-days"],
            "decline-extension": ["decline-reason"],
        }.items()
    },
    "opportunity_new": (
        "manager",
        lambda c, o: "/workspace/opportunities/new/",
        [
            "account",
            "name",
            "channel",
            "rep",
            "partner",
            "online_source",
            "sub_stage",
            "amount",
            "currency",
            "recurring",
            "opened_on",
            "expected_close_on",
        ],
    ),
    **{
        f"opportunity_{action}": (
            "manager",
            lambda c, o, action=action: f"/workspace/opportunities/{o['opportunity'].pk}/{action}/",
            fields,
        )
        for action, fields in {
            "move": ["move-sub_stage"],
            "win": ["win-closed_on", "win-amount", "win-note"],
            "lose": ["lose-closed_on", "lose-reason"],
        }.items()
    },
    "opportunity_end": (
        "manager",
        lambda c, o: f"/workspace/opportunities/{o['subscription'].pk}/end/",
        ["end-ends_on"],
    ),
    "channel_manager": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/channel-manager/",
        ["manager"],
    ),
    "webhook_endpoint": (
        "manager",
        lambda c, o: "/workspace/webhooks/",
        ["url", "secret", "description", "events"],
    ),
    # The partner programme.
    "programme_settings": (
        "manager",
        lambda c, o: "/workspace/programme/settings/",
        ["downgrade_grace_weeks"],
    ),
    "tier_create": (
        "manager",
        lambda c, o: "/workspace/programme/tiers/new/",
        [
            "code",
            "name",
            "rank",
            "min_covered_accounts",
            "min_satisfaction",
            "min_sourced_revenue",
            "protection_days",
            "discount_percent",
        ],
    ),
    "tier_edit": (
        "manager",
        lambda c, o: f"/workspace/programme/tiers/{o['tier'].pk}/edit/",
        ["code", "name", "rank", "min_conversions", "min_nps", "extension_days"],
    ),
    "partner_tier": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/tier/",
        ["tier", "reason"],
    ),
    "certification_add": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/certifications/",
        ["name", "holder", "earned_on", "expires_on"],
    ),
    "partner_target": (
        "manager",
        lambda c, o: f"/workspace/partners/{c.partner_a.pk}/targets/",
        ["year", "accounts_covered", "conversions", "revenue"],
    ),
    "rep_target": (
        "manager",
        lambda c, o: "/workspace/targets/reps/",
        ["rep", "year", "accounts_covered", "conversions", "revenue"],
    ),
    "survey_create": (
        "manager",
        lambda c, o: "/workspace/surveys/new/",
        [
            "name",
            "intro",
            "categories",
            "free_text_question",
            "schedule",
            "send_day",
            "open_days",
            "reminder_days_before_close",
        ],
    ),
    "survey_answer": (
        "manager",  # the link needs no sign-in; whoever holds it answers
        lambda c, o: f"/survey/{o['survey_token']}/",
        ["score_support", "score_pricing", "nps", "comment"],
    ),
    "review_open": (
        "manager",
        lambda c, o: "/workspace/reviews/open/",
        ["partner", "quarter"],
    ),
    "review_record": (
        "manager",
        lambda c, o: f"/workspace/reviews/{o['review'].pk}/record/",
        ["held_on", "attendees", "notes"],
    ),
    "review_action": (
        "manager",
        lambda c, o: f"/workspace/reviews/{o['review'].pk}/actions/",
        ["description", "owner", "partner_owner", "due_on"],
    ),
}


@pytest.fixture
def objects(cast: Cast) -> dict[str, Any]:
    today = timezone.localdate()
    account = AccountFactory()
    return {
        "draft": AgreementFactory(
            partner=cast.partner_a,
            status="draft",
            signed_on=None,
            start_date=today,
            end_date=today + timedelta(days=300),
        ),
        "active": AgreementFactory(partner=cast.partner_a, start_date=today - timedelta(days=10)),
        "feedback": FeedbackFactory(partner=cast.partner_a),
        "coverage": CoverageAssignment.objects.create(
            account=account,
            kind="online",
            online_source="web",
            start_date=today - timedelta(days=3),
        ),
        "registration": _registration(cast, account, status="submitted"),
        "approved": _registration(cast, AccountFactory(), status="approved"),
        "opportunity": OpportunityFactory(account=account),
        "subscription": OpportunityFactory(
            recurring=True, stage="won", closed_on=today - timedelta(days=30)
        ),
        **_programme(cast),
    }


def _programme(cast: Cast) -> dict[str, Any]:
    today = timezone.localdate()
    PartnerContactFactory(partner=cast.partner_a, email="survey@alpha.example")
    survey = survey_create(
        values=SurveyValues(name="Pulse", categories=["support", "pricing"]), by=cast.manager
    )
    wave = survey_wave_open(survey=survey, opens_on=today).wave
    invitation = wave.invitations.get()
    return {
        "tier": Tier.objects.get(code="silver"),
        "survey_token": survey_link_token(invitation),
        "review": business_review_open(
            partner=cast.partner_a,
            year=today.year,
            quarter=(today.month - 1) // 3 + 1,
            by=cast.manager,
        ),
    }


def _registration(cast: Cast, account: Account, *, status: str) -> DealRegistration:
    today = timezone.localdate()
    protected = {"protected_from": today, "protected_until": today + timedelta(days=30)}
    return DealRegistration.objects.create(
        partner=cast.partner_a,
        submitted_by=cast.partner_a_user,
        company_name=account.name,
        region=account.region,
        vertical=account.vertical,
        size_band=account.size_band,
        account=account,
        status=status,
        **(protected if status == "approved" else {}),
    )


@pytest.mark.parametrize("form", sorted(FORMS))
def test_it_never_fails_on_arbitrary_form_input(
    form: str, cast: Cast, objects: dict[str, Any]
) -> None:
    role, url_for, fields = FORMS[form]
    client = _client(getattr(cast, role))
    url = url_for(cast, objects)

    @HYPOTHESIS
    @given(values=st.fixed_dictionaries({name: nasty_text for name in fields}))
    def post(values: dict[str, str]) -> None:
        before = _counts()
        response = client.post(url, values)
        assert response.status_code < 500, f"{form}: {response.status_code} for {values!r}"
        if response.status_code in (200, 400):
            # Shown again with errors: nothing may have been written.
            assert _counts() == before, f"{form} saved something while refusing {values!r}"

    post()


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("contract.pdf", b"MZ\x90\x00this is a program", "PDF"),
        ("contract.pdf", b"", "empty"),
        ("../../../etc/cron.d/evil.pdf", b"%PDF-1.4\n%%EOF\n", None),
        ("contract.pdf", b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024 + 1), "10 MB"),
    ],
)
def test_it_refuses_bad_signed_documents_and_never_uses_the_uploaded_name(
    name: str, content: bytes, problem: str | None, cast: Cast, objects: dict[str, Any]
) -> None:
    draft = objects["draft"]
    response = _client(cast.manager).post(
        f"/workspace/agreements/{draft.pk}/activate/",
        {
            "signed_on": timezone.localdate().isoformat(),
            "signed_document": SimpleUploadedFile(name, content),
        },
    )
    draft.refresh_from_db()
    if problem is None:
        assert response.status_code == 302 and draft.signed_document
        assert ".." not in draft.signed_document.name and "evil" not in draft.signed_document.name
        assert re.fullmatch(r"agreements/\d{4}/[0-9a-f]{32}\.pdf", draft.signed_document.name)
    else:
        assert problem in response.content.decode() and not draft.signed_document
        assert draft.status == "draft"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("shot.png", b"GIF89a not a png"),
        ("notes.pdf", b"plain text"),
        ("x.jpg", b"\xff\xd8\xff" + b"0" * (5 << 20)),
    ],
)
def test_it_refuses_bad_feedback_attachments(name: str, content: bytes, cast: Cast) -> None:
    before = _counts()
    response = _client(cast.partner_a_user).post(
        "/portal/feedback/new/",
        {
            "category": "other",
            "satisfaction": "3",
            "subject": "s",
            "body": "b",
            "attachment": SimpleUploadedFile(name, content),
        },
    )
    assert 'data-field-error="attachment"' in response.content.decode()
    assert _counts() == before


ACCOUNT_COLUMNS = [
    "external_id",
    "name",
    "region",
    "vertical",
    "size_band",
    "entered_on",
    "archived_on",
    "converted_on",
    "converted_via",
]
cell = st.one_of(
    st.sampled_from(
        [
            "",
            "east",
            "retail",
            "smb",
            "enterprise",
            "direct",
            "online",
            "2025-01-01",
            "2026-02-30",
            "2024-12-31",
            "x" * 300,
            "A-1",
            "A-2",
            ";",
            '"',
            "项目",
        ]
    ),
    st.text(alphabet=string.printable, max_size=12),
)


@HYPOTHESIS
@given(rows=st.lists(st.lists(cell, min_size=9, max_size=9), min_size=1, max_size=6))
def test_it_imports_arbitrary_account_rows_all_or_nothing(
    tmp_path_factory: Any, rows: list[list[str]]
) -> None:
    directory: Path = tmp_path_factory.mktemp("market")
    (directory / "regions.csv").write_text("code,name\neast,East\n", encoding="utf-8")
    (directory / "verticals.csv").write_text("code,name\nretail,Retail\n", encoding="utf-8")
    import csv

    with open(directory / "accounts.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ACCOUNT_COLUMNS)
        writer.writerows(rows)
    before = _counts()
    try:
        market_import(paths=[directory])
    except MarketImportError as error:
        assert error.problems
        for problem in error.problems:
            assert re.match(r"^[a-z]+\.csv:\d+: [a-z_]+: .+", problem), problem
        assert _counts() == before
    else:
        assert Account.objects.count() >= 1


pytestmark = pytest.mark.django_db


# Query strings ----------------------------------------------------------------------------------

# Every list a user can open, by who opens it (the cast's attribute).
LISTS: list[tuple[str, str]] = [
    ("manager", "/workspace/partners/"),
    ("manager", "/workspace/distributors/"),
    ("manager", "/workspace/agreements/"),
    ("manager", "/workspace/agreements/renewals-due/"),
    ("manager", "/workspace/agreements/new/"),
    ("manager", "/workspace/feedback/"),
    ("manager", "/workspace/feedback/log/"),
    ("manager", "/workspace/accounts/"),
    ("manager", "/workspace/white-space/"),
    ("manager", "/workspace/reps/"),
    ("manager", "/workspace/opportunities/"),
    ("manager", "/workspace/opportunities/board/"),
    ("partner_a_user", "/portal/opportunities/"),
    ("manager", "/workspace/imports/"),
    ("manager", "/dashboard/"),
    ("manager", "/dashboard/digest/"),
    ("rep_user", "/workspace/my-accounts/"),
    ("partner_a_user", "/portal/"),
    ("partner_a_user", "/portal/accounts/"),
    ("partner_a_user", "/portal/agreements/"),
    ("partner_a_user", "/portal/feedback/"),
    ("partner_a_user", "/portal/scorecard/"),
    ("manager", "/workspace/programme/"),
    ("manager", "/workspace/programme/history/"),
    ("manager", "/workspace/targets/"),
    ("manager", "/workspace/surveys/"),
    ("manager", "/workspace/reviews/"),
    *(
        (role, f"/api/v1/programme/{name}/")
        for role in ("manager", "partner_a_user")
        for name in ("tier-changes", "certifications", "targets", "survey-responses", "scorecard")
    ),
    ("manager", "/api/v1/programme/drivers/"),
    *(
        (role, f"/api/v1/{name}/")
        for role in ("manager", "partner_a_user")
        for name in ("accounts", "partners", "agreements", "feedback", "opportunities")
    ),
    *(
        ("manager", f"/api/v1/{name}/")
        for name in (
            "regions",
            "verticals",
            "reps",
            "coverage",
            "contacts",
            "metrics/runs",
            "metrics/segments",
            "metrics/rollup",
            "metrics/trend",
            "metrics/partners",
            "metrics/weeks",
            "metrics/revenue",
        )
    ),
]
PARAMETERS = [
    "q",
    "page",
    "page_size",
    "cursor",
    "partner",
    "account",
    "rep",
    "region",
    "vertical",
    "size_band",
    "status",
    "category",
    "kind",
    "sort",
    "ordering",
    "search",
    "week",
    "ends_after",
    "ends_before",
    "active_on",
    "satisfaction",
    "rating",
    "within",
    "format",
]


def _cursor(raw: str) -> str:
    import base64

    return base64.b64encode(raw.encode()).decode()


CRAFTED_CURSORS = [_cursor(raw) for raw in ("p=abc", "p=1e5", "p=%00", "o=-1&p=1", "p=" + "9" * 30)]
nasty_query = st.one_of(
    nasty_text.filter(lambda text: len(text) < 200),
    st.sampled_from(
        [
            "\x00",
            "a\x00b",
            "99999999999999999999",
            "-99999999999999999999",
            "1e309",
            "0001-01-01",
            "9999-12-31",
            "10000-01-01",
            "2026-W99",
            "0000-W01",
            "-1",
            *CRAFTED_CURSORS,
        ]
    ),
)


@pytest.mark.parametrize(("role", "path"), LISTS, ids=[f"{r}:{p}" for r, p in LISTS])
def test_it_never_fails_on_arbitrary_query_strings(
    role: str, path: str, cast: Cast, objects: dict[str, Any]
) -> None:
    client = _client(getattr(cast, role))

    @HYPOTHESIS
    @given(params=st.dictionaries(st.sampled_from(PARAMETERS), nasty_query, max_size=4))
    @example(params={"q": "a\x00b", "page": "99999999999999999999"})
    @example(params={"partner": "99999999999999999999", "account": "-1", "rep": "1e309"})
    @example(params={"cursor": CRAFTED_CURSORS[0], "ordering": "external_id"})
    @example(params={"cursor": CRAFTED_CURSORS[2], "page_size": "99999999999999999999"})
    @example(params={"ends_before": "9999-12-31", "ends_after": "0001-01-01"})
    @example(params={"active_on": "0001-01-01", "week": "0000-W01", "within": "9" * 30})
    def get(params: dict[str, str]) -> None:
        response = client.get(path, params)
        assert response.status_code < 500, f"{path}: {response.status_code} for {params!r}"

    get()


@pytest.mark.parametrize(("role", "path"), LISTS, ids=[f"{r}:{p}" for r, p in LISTS])
def test_it_refuses_a_nul_character_in_the_query_string_with_a_400(
    role: str, path: str, cast: Cast
) -> None:
    response = _client(getattr(cast, role)).get(path, {"q": "acme\x00"})
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


@pytest.mark.parametrize("path", ["/api/v1/accounts/", "/api/v1/coverage/"])
@pytest.mark.parametrize("cursor", CRAFTED_CURSORS)
def test_it_refuses_a_crafted_cursor_with_a_400(path: str, cursor: str, cast: Cast) -> None:
    response = _client(cast.manager).get(path, {"cursor": cursor})
    assert response.status_code == 400
    assert response.json() == {"cursor": ["This cursor was not made by this list; start over."]}
