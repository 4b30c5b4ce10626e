"""Partners are outsiders: a walk over every route a partner user can reach.

Every portal and API route must appear in WALK below; a route added without it fails
`test_it_knows_every_partner_reachable_route`. Each entry says how to point the route at the
*other* partner's object, and the walk asserts a 404 (never a 403, which would reveal that
the object exists). Every other route must be a 404 for partner users altogether.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import MetricsRun
from channels.models import CoverageAssignment
from crm.models import ChannelKind
from crm.services import api_token_issue
from partners.models import Agreement, DealRegistration, Feedback
from partners.programme_services import certification_add, target_set
from partners.survey_services import (
    SurveyAnswer,
    SurveyValues,
    survey_create,
    survey_response_submit,
    survey_wave_open,
)
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    FeedbackNoteFactory,
    FeedbackReplyFactory,
    OpportunityFactory,
    PartnerContactFactory,
    tier_change_made,
    tier_set,
)

PDF = b"%PDF-1.4\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


@dataclass
class World:
    cast: Cast
    ours: dict[str, object]
    theirs: dict[str, object]


@dataclass(frozen=True)
class Walk:
    """How to aim a route at the other partner's data, and what to try there."""

    url: Callable[[World], str]
    methods: tuple[str, ...] = ("get",)
    # Routes without an object id: the page must answer but show nothing of the other partner.
    listing: bool = False


def _their(key: str, suffix: str = "") -> Callable[[World], str]:
    return lambda world: suffix.format(pk=world.theirs[key].pk)  # type: ignore[attr-defined]


WALK: dict[str, Walk] = {
    "portal/": Walk(lambda w: "/portal/", listing=True),
    "portal/agreements/": Walk(lambda w: "/portal/agreements/", listing=True),
    "portal/agreements/<int:pk>/document/": Walk(
        _their("agreement", "/portal/agreements/{pk}/document/")
    ),
    "portal/accounts/": Walk(lambda w: "/portal/accounts/?q=Their", listing=True),
    "portal/feedback/": Walk(lambda w: "/portal/feedback/", listing=True),
    "portal/feedback/new/": Walk(lambda w: "/portal/feedback/new/", listing=True),
    "portal/feedback/<int:pk>/": Walk(
        _their("feedback", "/portal/feedback/{pk}/"), methods=("get", "post")
    ),
    "portal/feedback/<int:pk>/attachment/": Walk(
        _their("feedback", "/portal/feedback/{pk}/attachment/")
    ),
    "portal/profile/": Walk(lambda w: "/portal/profile/", listing=True),
    # Revokes the caller's own tokens only (tests/api/test_tokens.py).
    "portal/profile/tokens/revoke/": Walk(lambda w: "", methods=()),
    # Checked separately: an invitation link answers the same for every invalid link.
    "portal/invitation/<str:uidb64>/<str:token>/": Walk(lambda w: "", methods=()),
    # The API, through partner-a's authenticated API client.
    # Exchanging one's own password for a token reveals nothing of another partner.
    "api/v1/auth/token/": Walk(lambda w: "", methods=()),
    "api/v1/^auth/tokens/$": Walk(lambda w: "/api/v1/auth/tokens/", listing=True),
    "api/v1/^auth/tokens/(?P<pk>[^/.]+)/$": Walk(
        _their("token", "/api/v1/auth/tokens/{pk}/"), methods=("delete",)
    ),
    "api/v1/metrics/segments/": Walk(lambda w: "/api/v1/metrics/segments/", listing=True),
    "api/v1/metrics/rollup/": Walk(lambda w: "/api/v1/metrics/rollup/?by=partner", listing=True),
    "api/v1/metrics/trend/": Walk(lambda w: "/api/v1/metrics/trend/", listing=True),
    "api/v1/metrics/partners/": Walk(lambda w: "/api/v1/metrics/partners/", listing=True),
    "api/v1/metrics/registrations/": Walk(
        lambda w: "/api/v1/metrics/registrations/?by_channel=true", listing=True
    ),
    "api/v1/metrics/weeks/": Walk(lambda w: "/api/v1/metrics/weeks/", listing=True),
    "api/v1/metrics/revenue/": Walk(lambda w: "/api/v1/metrics/revenue/", listing=True),
    "api/v1/^regions/$": Walk(lambda w: "/api/v1/regions/", listing=True),
    "api/v1/^regions/(?P<pk>[^/.]+)/$": Walk(
        _their("region", "/api/v1/regions/{pk}/"), listing=True
    ),
    "api/v1/^verticals/$": Walk(lambda w: "/api/v1/verticals/", listing=True),
    "api/v1/^verticals/(?P<pk>[^/.]+)/$": Walk(
        _their("vertical", "/api/v1/verticals/{pk}/"), listing=True
    ),
    "api/v1/^accounts/$": Walk(lambda w: "/api/v1/accounts/", listing=True),
    "api/v1/^accounts/(?P<pk>[^/.]+)/$": Walk(_their("account", "/api/v1/accounts/{pk}/")),
    "api/v1/^reps/$": Walk(lambda w: "/api/v1/reps/", listing=True),
    "api/v1/^reps/(?P<pk>[^/.]+)/$": Walk(_their("rep", "/api/v1/reps/{pk}/")),
    "api/v1/^coverage/$": Walk(lambda w: "/api/v1/coverage/", listing=True),
    "api/v1/^coverage/(?P<pk>[^/.]+)/$": Walk(_their("coverage", "/api/v1/coverage/{pk}/")),
    "api/v1/^coverage/(?P<pk>[^/.]+)/end/$": Walk(
        _their("coverage", "/api/v1/coverage/{pk}/end/"), methods=("post",)
    ),
    "api/v1/^partners/$": Walk(lambda w: "/api/v1/partners/", listing=True),
    "api/v1/^partners/(?P<pk>[^/.]+)/$": Walk(
        _their("partner", "/api/v1/partners/{pk}/"), methods=("get", "put", "patch")
    ),
    "api/v1/^contacts/$": Walk(lambda w: "/api/v1/contacts/", listing=True),
    "api/v1/^contacts/(?P<pk>[^/.]+)/$": Walk(_their("contact", "/api/v1/contacts/{pk}/")),
    "api/v1/^agreements/$": Walk(lambda w: "/api/v1/agreements/", listing=True),
    "api/v1/^agreements/(?P<pk>[^/.]+)/$": Walk(
        _their("agreement", "/api/v1/agreements/{pk}/"), methods=("get", "put", "patch")
    ),
    "api/v1/^agreements/(?P<pk>[^/.]+)/activate/$": Walk(
        _their("agreement", "/api/v1/agreements/{pk}/activate/"), methods=("post",)
    ),
    "api/v1/^agreements/(?P<pk>[^/.]+)/renew/$": Walk(
        _their("agreement", "/api/v1/agreements/{pk}/renew/"), methods=("post",)
    ),
    "api/v1/^agreements/(?P<pk>[^/.]+)/terminate/$": Walk(
        _their("agreement", "/api/v1/agreements/{pk}/terminate/"), methods=("post",)
    ),
    "api/v1/^agreements/(?P<pk>[^/.]+)/document/$": Walk(
        _their("agreement", "/api/v1/agreements/{pk}/document/")
    ),
    "api/v1/^feedback/$": Walk(lambda w: "/api/v1/feedback/", listing=True),
    "api/v1/^feedback/(?P<pk>[^/.]+)/$": Walk(_their("feedback", "/api/v1/feedback/{pk}/")),
    "api/v1/^feedback/(?P<pk>[^/.]+)/attachment/$": Walk(
        _their("feedback", "/api/v1/feedback/{pk}/attachment/")
    ),
    "api/v1/^feedback/(?P<pk>[^/.]+)/notes/$": Walk(
        _their("feedback", "/api/v1/feedback/{pk}/notes/"), methods=("get", "post")
    ),
    "api/v1/^feedback/(?P<pk>[^/.]+)/replies/$": Walk(
        _their("feedback", "/api/v1/feedback/{pk}/replies/"), methods=("get", "post")
    ),
    "api/v1/^feedback/(?P<pk>[^/.]+)/triage/$": Walk(
        _their("feedback", "/api/v1/feedback/{pk}/triage/"), methods=("post",)
    ),
    "api/v1/^metrics/runs/$": Walk(lambda w: "/api/v1/metrics/runs/", listing=True),
    "api/v1/^metrics/runs/(?P<pk>[^/.]+)/$": Walk(_their("run", "/api/v1/metrics/runs/{pk}/")),
    "portal/registrations/": Walk(lambda w: "/portal/registrations/", listing=True),
    "portal/registrations/new/": Walk(
        lambda w: f"/portal/registrations/new/?account={w.theirs['account'].external_id}",
        listing=True,
    ),
    "portal/registrations/<int:pk>/": Walk(_their("registration", "/portal/registrations/{pk}/")),
    "portal/registrations/<int:pk>/withdraw/": Walk(
        _their("registration", "/portal/registrations/{pk}/withdraw/"), methods=("post",)
    ),
    "portal/registrations/<int:pk>/extend/": Walk(
        _their("registration", "/portal/registrations/{pk}/extend/"), methods=("post",)
    ),
    "api/v1/^deal-registrations/$": Walk(lambda w: "/api/v1/deal-registrations/", listing=True),
    "api/v1/^deal-registrations/(?P<pk>[^/.]+)/$": Walk(
        _their("registration", "/api/v1/deal-registrations/{pk}/")
    ),
    **{
        f"api/v1/^deal-registrations/(?P<pk>[^/.]+)/{action}/$": Walk(
            _their("registration", f"/api/v1/deal-registrations/{{pk}}/{action}/"),
            methods=("post",),
        )
        for action in ("approve", "reject", "won", "lost", "withdraw", "extend")
    },
    "portal/scorecard/": Walk(lambda w: "/portal/scorecard/", listing=True),
    "api/v1/^programme/tiers/$": Walk(lambda w: "/api/v1/programme/tiers/", listing=True),
    # Tiers are the programme's, the same for every partner; partners cannot change them.
    "api/v1/^programme/tiers/(?P<pk>[^/.]+)/$": Walk(lambda w: "", methods=()),
    "api/v1/^programme/tier-changes/$": Walk(
        lambda w: "/api/v1/programme/tier-changes/", listing=True
    ),
    "api/v1/^programme/tier-changes/(?P<pk>[^/.]+)/$": Walk(
        _their("tier_change", "/api/v1/programme/tier-changes/{pk}/")
    ),
    "api/v1/^programme/certifications/$": Walk(
        lambda w: "/api/v1/programme/certifications/", listing=True
    ),
    "api/v1/^programme/certifications/(?P<pk>[^/.]+)/$": Walk(
        _their("certification", "/api/v1/programme/certifications/{pk}/"),
        methods=("get", "delete"),
    ),
    "api/v1/^programme/targets/$": Walk(lambda w: "/api/v1/programme/targets/", listing=True),
    "api/v1/^programme/targets/(?P<pk>[^/.]+)/$": Walk(
        _their("target", "/api/v1/programme/targets/{pk}/"), methods=("get", "delete")
    ),
    "api/v1/^programme/surveys/$": Walk(lambda w: "/api/v1/programme/surveys/", listing=True),
    "api/v1/^programme/surveys/(?P<pk>[^/.]+)/$": Walk(
        _their("survey", "/api/v1/programme/surveys/{pk}/")
    ),
    "api/v1/^programme/survey-waves/$": Walk(
        lambda w: "/api/v1/programme/survey-waves/", listing=True
    ),
    "api/v1/^programme/survey-waves/(?P<pk>[^/.]+)/$": Walk(
        _their("wave", "/api/v1/programme/survey-waves/{pk}/")
    ),
    "api/v1/^programme/survey-responses/$": Walk(
        lambda w: "/api/v1/programme/survey-responses/", listing=True
    ),
    "api/v1/^programme/survey-responses/(?P<pk>[^/.]+)/$": Walk(
        _their("survey_response", "/api/v1/programme/survey-responses/{pk}/")
    ),
    # A partner gets its own scorecard whatever partner it names.
    "api/v1/programme/scorecard/": Walk(
        lambda w: f"/api/v1/programme/scorecard/?partner={w.cast.partner_b.pk}", listing=True
    ),
    "api/v1/programme/drivers/": Walk(lambda w: "/api/v1/programme/drivers/", listing=True),
    "portal/opportunities/": Walk(lambda w: "/portal/opportunities/", listing=True),
    "portal/opportunities/<int:pk>/": Walk(_their("opportunity", "/portal/opportunities/{pk}/")),
    "api/v1/^opportunities/$": Walk(
        lambda w: f"/api/v1/opportunities/?partner={w.cast.partner_b.pk}", listing=True
    ),
    "api/v1/^opportunities/(?P<pk>[^/.]+)/$": Walk(
        _their("opportunity", "/api/v1/opportunities/{pk}/")
    ),
    "api/schema/": Walk(lambda w: "/api/schema/", listing=True),
    "api/docs/": Walk(lambda w: "/api/docs/", listing=True),
    "api/redoc/": Walk(lambda w: "/api/redoc/", listing=True),
}
# Routes under these prefixes are partner-reachable and must be in WALK.
PARTNER_PREFIXES = ("portal/", "api/")


def _routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


@pytest.fixture
def world(cast: Cast) -> World:
    today = timezone.localdate()

    tier_set("silver")
    for partner, label in ((cast.partner_a, "Our"), (cast.partner_b, "Their")):
        PartnerContactFactory(partner=partner, email=f"{label.lower()}@survey.example")
    survey = survey_create(
        values=SurveyValues(name="Walk survey", categories=["support"]), by=cast.manager
    )
    wave = survey_wave_open(survey=survey, opens_on=today).wave

    def organisation(partner: Any, label: str) -> dict[str, object]:
        agreement = AgreementFactory(
            partner=partner, external_id=f"AG-{label}", start_date=today - timedelta(days=30)
        )
        agreement.signed_document.save("s.pdf", SimpleUploadedFile("s.pdf", PDF))
        feedback = FeedbackFactory(partner=partner, subject=f"{label} feedback subject")
        feedback.attachment.save("a.png", SimpleUploadedFile("a.png", PNG))
        FeedbackReplyFactory(feedback=feedback, body=f"{label} reply body")
        FeedbackNoteFactory(feedback=feedback, body=f"{label} INTERNAL NOTE")
        account = AccountFactory(name=f"{label} Account Ltd")
        coverage = CoverageAssignment.objects.create(
            account=account,
            kind=ChannelKind.PARTNER,
            partner=partner,
            start_date=today - timedelta(days=10),
        )
        run = MetricsRun.objects.create(
            week=f"2026-W{40 + len(label)}",
            as_of=date(2026, 10, 4) + timedelta(weeks=len(label)),
            final=True,
            status="succeeded",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        )
        registration = DealRegistration.objects.create(
            partner=partner,
            company_name=f"{label} Deal Co",
            region=account.region,
            vertical=account.vertical,
            size_band="smb",
            account=account,
            status="approved",
            protected_from=today,
            protected_until=today + timedelta(days=90),
            decision_reason=f"{label} decision reason",
        )
        invitation = wave.invitations.get(partner=partner)
        opportunity = OpportunityFactory(
            account=account,
            name=f"{label} Opportunity Name",
            channel=ChannelKind.PARTNER,
            partner=partner,
        )
        return {
            "tier_change": tier_change_made(
                partner=partner, tier="silver", by=cast.manager, reason=f"{label} tier reason"
            ),
            "certification": certification_add(
                partner=partner, name=f"{label} Certification", earned_on=today
            ),
            "target": target_set(year=today.year, partner=partner, conversions=7),
            "survey": survey,
            "wave": wave,
            "survey_response": survey_response_submit(
                invitation=invitation,
                answer=SurveyAnswer({"support": 4}, comment=f"{label} survey comment"),
            ),
            "token": api_token_issue(user=partner.portal_users.get().user)[0],
            "registration": registration,
            "opportunity": opportunity,
            "agreement": agreement,
            "feedback": feedback,
            "account": account,
            "coverage": coverage,
            "contact": PartnerContactFactory(partner=partner, name=f"{label} Contact Person"),
            "partner": partner,
            "region": account.region,
            "vertical": account.vertical,
            "rep": cast.rep,
            "run": run,
        }

    return World(
        cast=cast,
        ours=organisation(cast.partner_a, "Our"),
        theirs=organisation(cast.partner_b, "Their"),
    )


def _partner_client(world: World) -> Client:
    client = Client()
    client.force_login(world.cast.partner_a_user)
    return client


def _partner_api(world: World) -> APIClient:
    api = APIClient()
    api.force_authenticate(world.cast.partner_a_user)
    return api


def _request(world: World, route: str, method: str, url: str) -> Any:
    """Ask as partner-a: through the API client for API routes, the browser client otherwise."""
    if route.startswith("api/"):
        return getattr(_partner_api(world), method)(
            url, {"body": "probe", "partner": world.cast.partner_b.pk}, format="json"
        )
    return getattr(_partner_client(world), method)(
        url, {"body": "probe"} if method == "post" else None
    )


def test_it_knows_every_partner_reachable_route() -> None:
    reachable = {route for route in _routes() if route.startswith(PARTNER_PREFIXES)}
    missing = sorted(reachable - set(WALK))
    assert not missing, f"add these routes to the isolation WALK: {missing}"


def test_it_answers_404_for_the_other_partners_objects(world: World) -> None:
    walked = 0
    for route, walk in WALK.items():
        if walk.listing or not walk.methods:
            continue
        url = walk.url(world)
        for method in walk.methods:
            response = _request(world, route, method, url)
            assert response.status_code == 404, (
                f"{method.upper()} {url} ({route}): {response.status_code}"
            )
            walked += 1
    assert walked >= 25
    their_feedback: Feedback = world.theirs["feedback"]  # type: ignore[assignment]
    assert their_feedback.replies.count() == 1, "nothing was written to the other partner's thread"
    their_registration: DealRegistration = world.theirs["registration"]  # type: ignore[assignment]
    their_registration.refresh_from_db()
    assert their_registration.status == "approved", "nothing changed the other's registration"
    assert their_registration.extension_status == ""


def test_it_shows_nothing_of_the_other_partner_on_any_listing(world: World) -> None:
    for route, walk in WALK.items():
        if not walk.listing:
            continue
        response = _request(world, route, "get", walk.url(world))
        assert response.status_code in (200, 404), f"{route}: {response.status_code}"
        html = response.content.decode()
        forbidden_texts = [
            "Their Contact Person",
            "AG-Their",
            "Their feedback subject",
            "Their reply body",
            "Their Account Ltd",
            "Their Deal Co",
            "Their decision reason",
            "Their tier reason",
            "Their Certification",
            "Their survey comment",
            "their@survey.example",
            "Their Opportunity Name",
            world.cast.partner_b.name,
            "INTERNAL NOTE",
        ]
        for forbidden in forbidden_texts:
            assert forbidden not in html, f"{route} shows {forbidden!r}"


def test_it_serves_the_partners_own_files_and_pages(world: World) -> None:
    client = _partner_client(world)
    ours: Agreement = world.ours["agreement"]  # type: ignore[assignment]
    feedback: Feedback = world.ours["feedback"]  # type: ignore[assignment]
    assert client.get(f"/portal/agreements/{ours.pk}/document/").status_code == 200
    assert client.get(f"/portal/feedback/{feedback.pk}/attachment/").status_code == 200
    assert _partner_api(world).get(f"/api/v1/agreements/{ours.pk}/document/").status_code == 200
    assert _partner_api(world).get(f"/api/v1/feedback/{feedback.pk}/attachment/").status_code == 200
    page = client.get(f"/portal/feedback/{feedback.pk}/").content.decode()
    assert "Our reply body" in page and "INTERNAL NOTE" not in page
    assert "Our Account Ltd" in client.get("/portal/accounts/").content.decode()


def test_it_answers_every_internal_route_with_404_for_partner_users(world: World) -> None:
    client = _partner_client(world)
    ids = {"pk": world.ours["agreement"].pk}  # type: ignore[attr-defined]
    checked = 0
    for route in _routes():
        if route.startswith((*PARTNER_PREFIXES, "accounts/", "i18n/")) or route == "":
            continue
        path = "/" + route
        for name in (
            "<int:pk>",
            "<path:object_id>",
            "<int:object_id>",
            "<str:uidb64>",
            "<str:token>",
        ):
            path = path.replace(name, str(ids["pk"]))
        if "<" in path or "(?P" in path or "^" in path:
            continue  # admin's regex routes: covered by the prefix check below
        assert client.get(path).status_code == 404, path
        checked += 1
    for path in [
        "/admin/",
        "/admin/partners/partner/",
        f"/admin/partners/agreement/{ids['pk']}/change/",
    ]:
        assert client.get(path).status_code == 404, path
    assert checked > 20


def test_it_answers_invalid_invitation_links_alike(world: World) -> None:
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    existing = urlsafe_base64_encode(force_bytes(world.cast.partner_b_user.pk))
    missing = urlsafe_base64_encode(force_bytes(999_999))
    first_path = f"/portal/invitation/{existing}/bad-token/"
    second_path = f"/portal/invitation/{missing}/bad-token/"
    first, second = Client().get(first_path), Client().get(second_path)
    assert first.status_code == second.status_code == 400

    # The pages differ only in the address asked for (echoed for the language switch) and the
    # per-response CSRF token.
    def normalised(html: str, path: str) -> str:
        return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html.replace(path, "PATH"))

    assert normalised(first.content.decode(), first_path) == normalised(
        second.content.decode(), second_path
    )
