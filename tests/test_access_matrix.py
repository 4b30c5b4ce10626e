"""The access matrix: every route × {anonymous, partner user, sales rep, sales manager,
executive, admin} with the expected outcome, checked against the running URLconf.

A route the matrix does not name fails `test_it_covers_every_route`: adding a page means
deciding here who may reach it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from analytics.metrics import COUNT_COLUMNS
from analytics.models import MetricsRun, SegmentSnapshot
from channels.models import CoverageAssignment
from crm.services import api_token_issue
from partners.models import DealRegistration, ImportJob, Tier, WebhookDelivery, WebhookEndpoint
from partners.programme_services import certification_add, target_set
from partners.review_services import business_review_open, review_action_add
from partners.survey_services import (
    SurveyAnswer,
    SurveyValues,
    survey_create,
    survey_link_token,
    survey_response_submit,
    survey_wave_open,
)
from tests.cast import Cast
from tests.factories import (
    AccountFactory,
    AgreementFactory,
    FeedbackFactory,
    OpportunityFactory,
    PartnerContactFactory,
    UserFactory,
    tier_change_made,
    tier_set,
)

ROLES = ("anonymous", "partner", "rep", "manager", "executive", "admin")

OK = "ok"  # answers 200, or redirects somewhere other than the login page
LOGIN = "login"  # redirected to the login page
NOT_FOUND = "404"  # as if the page did not exist
BAD = "400"  # refused as a bad request, revealing nothing
LOCKED = "405"  # method not allowed (the route takes POST only)
ANY_WRITE = "write"  # a POST reached the view (redirect, form error or 400), not refused


def row(
    anonymous: str, partner: str, rep: str, manager: str, executive: str, admin: str
) -> dict[str, str]:
    return dict(zip(ROLES, (anonymous, partner, rep, manager, executive, admin), strict=True))


INTERNAL_READ = row(LOGIN, NOT_FOUND, OK, OK, OK, OK)
MANAGER_EXEC = row(LOGIN, NOT_FOUND, NOT_FOUND, OK, OK, OK)
MANAGER_ONLY = row(LOGIN, NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK)
MANAGER_WRITE = row(LOGIN, NOT_FOUND, NOT_FOUND, ANY_WRITE, NOT_FOUND, ANY_WRITE)
PORTAL = row(LOGIN, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND)
EVERYONE = row(OK, OK, OK, OK, OK, OK)


@dataclass(frozen=True)
class Entry:
    url: Callable[[dict[str, Any]], str]
    expected: dict[str, str]
    method: str = "get"


def fixed(path: str) -> Callable[[dict[str, Any]], str]:
    return lambda objects: path


def obj(template: str, key: str) -> Callable[[dict[str, Any]], str]:
    return lambda objects: template.format(pk=objects[key].pk)


MATRIX: dict[str, list[Entry]] = {
    "": [Entry(fixed("/"), row(LOGIN, OK, OK, OK, OK, OK))],
    "health/": [Entry(fixed("/health/"), row(OK, NOT_FOUND, OK, OK, OK, OK))],
    "accounts/login/": [Entry(fixed("/accounts/login/"), row(OK, OK, OK, OK, OK, OK))],
    "accounts/logout/": [
        Entry(fixed("/accounts/logout/"), row(LOGIN, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN), "post")
    ],
    "accounts/password_change/": [
        Entry(fixed("/accounts/password_change/"), row(LOGIN, OK, OK, OK, OK, OK))
    ],
    "accounts/password_change/done/": [
        Entry(fixed("/accounts/password_change/done/"), row(LOGIN, OK, OK, OK, OK, OK))
    ],
    "accounts/password_reset/": [Entry(fixed("/accounts/password_reset/"), EVERYONE)],
    "accounts/password_reset/done/": [Entry(fixed("/accounts/password_reset/done/"), EVERYONE)],
    "accounts/reset/<uidb64>/<token>/": [Entry(fixed("/accounts/reset/MQ/bad-token/"), EVERYONE)],
    "accounts/reset/done/": [Entry(fixed("/accounts/reset/done/"), EVERYONE)],
    "workspace/": [Entry(fixed("/workspace/"), INTERNAL_READ)],
    "workspace/reps/": [Entry(fixed("/workspace/reps/"), INTERNAL_READ)],
    "workspace/partners/": [Entry(fixed("/workspace/partners/"), INTERNAL_READ)],
    "workspace/distributors/": [Entry(fixed("/workspace/distributors/"), INTERNAL_READ)],
    "workspace/partners/new/": [
        Entry(fixed("/workspace/partners/new/"), MANAGER_ONLY),
        Entry(fixed("/workspace/partners/new/"), MANAGER_WRITE, "post"),
    ],
    "workspace/partners/<int:pk>/": [
        Entry(obj("/workspace/partners/{pk}/", "partner"), INTERNAL_READ)
    ],
    "workspace/partners/<int:pk>/edit/": [
        Entry(obj("/workspace/partners/{pk}/edit/", "partner"), MANAGER_ONLY),
        Entry(obj("/workspace/partners/{pk}/edit/", "partner"), MANAGER_WRITE, "post"),
    ],
    "workspace/partners/<int:pk>/contacts/": [
        Entry(obj("/workspace/partners/{pk}/contacts/", "partner"), MANAGER_WRITE, "post")
    ],
    "workspace/partners/<int:pk>/invite/": [
        Entry(obj("/workspace/partners/{pk}/invite/", "partner"), MANAGER_WRITE, "post")
    ],
    "workspace/partners/<int:pk>/users/<int:user_pk>/revoke-tokens/": [
        Entry(
            lambda o: (
                f"/workspace/partners/{o['partner'].pk}/users/{o['portal_user'].pk}/revoke-tokens/"
            ),
            MANAGER_WRITE,
            "post",
        )
    ],
    "workspace/agreements/": [Entry(fixed("/workspace/agreements/"), INTERNAL_READ)],
    "workspace/agreements/new/": [Entry(fixed("/workspace/agreements/new/"), MANAGER_ONLY)],
    "workspace/agreements/renewals-due/": [
        Entry(fixed("/workspace/agreements/renewals-due/"), INTERNAL_READ)
    ],
    "workspace/agreements/<int:pk>/": [
        Entry(obj("/workspace/agreements/{pk}/", "agreement"), INTERNAL_READ)
    ],
    "workspace/agreements/<int:pk>/edit/": [
        Entry(obj("/workspace/agreements/{pk}/edit/", "draft"), MANAGER_ONLY)
    ],
    "workspace/agreements/<int:pk>/activate/": [
        Entry(obj("/workspace/agreements/{pk}/activate/", "draft"), MANAGER_ONLY)
    ],
    "workspace/agreements/<int:pk>/terminate/": [
        Entry(obj("/workspace/agreements/{pk}/terminate/", "agreement"), MANAGER_ONLY)
    ],
    "workspace/agreements/<int:pk>/renew/": [
        Entry(obj("/workspace/agreements/{pk}/renew/", "agreement"), MANAGER_ONLY),
        Entry(obj("/workspace/agreements/{pk}/renew/", "agreement"), MANAGER_WRITE, "post"),
    ],
    # The POST aims at a signed agreement, which stays: a deleted draft would leave the next
    # role a 404.
    "workspace/agreements/<int:pk>/discard/": [
        Entry(obj("/workspace/agreements/{pk}/discard/", "draft"), MANAGER_ONLY),
        Entry(obj("/workspace/agreements/{pk}/discard/", "agreement"), MANAGER_WRITE, "post"),
    ],
    "workspace/agreements/<int:pk>/document/": [
        Entry(obj("/workspace/agreements/{pk}/document/", "agreement"), INTERNAL_READ)
    ],
    "workspace/feedback/": [Entry(fixed("/workspace/feedback/"), INTERNAL_READ)],
    "workspace/feedback/log/": [Entry(fixed("/workspace/feedback/log/"), MANAGER_ONLY)],
    "workspace/feedback/<int:pk>/": [
        Entry(obj("/workspace/feedback/{pk}/", "feedback"), INTERNAL_READ)
    ],
    "workspace/feedback/<int:pk>/triage/": [
        Entry(obj("/workspace/feedback/{pk}/triage/", "feedback"), MANAGER_WRITE, "post")
    ],
    "workspace/feedback/<int:pk>/reply/": [
        Entry(obj("/workspace/feedback/{pk}/reply/", "feedback"), MANAGER_WRITE, "post")
    ],
    "workspace/feedback/<int:pk>/note/": [
        Entry(obj("/workspace/feedback/{pk}/note/", "feedback"), MANAGER_WRITE, "post")
    ],
    "workspace/accounts/": [Entry(fixed("/workspace/accounts/"), INTERNAL_READ)],
    "workspace/my-accounts/": [
        Entry(
            fixed("/workspace/my-accounts/"),
            row(LOGIN, NOT_FOUND, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND),
        )
    ],
    "workspace/accounts/<int:pk>/": [
        Entry(obj("/workspace/accounts/{pk}/", "rep_account"), INTERNAL_READ)
    ],
    "workspace/coverage/assign/": [
        Entry(fixed("/workspace/coverage/assign/"), MANAGER_WRITE, "post")
    ],
    "workspace/coverage/<int:pk>/end/": [
        Entry(obj("/workspace/coverage/{pk}/end/", "coverage"), MANAGER_WRITE, "post")
    ],
    "workspace/white-space/": [Entry(fixed("/workspace/white-space/"), INTERNAL_READ)],
    "workspace/choices/partners/": [Entry(fixed("/workspace/choices/partners/"), INTERNAL_READ)],
    "workspace/choices/reps/": [Entry(fixed("/workspace/choices/reps/"), INTERNAL_READ)],
    "workspace/imports/": [Entry(fixed("/workspace/imports/"), MANAGER_ONLY)],
    "workspace/imports/<int:pk>/": [
        Entry(obj("/workspace/imports/{pk}/", "import_job"), MANAGER_ONLY)
    ],
    "workspace/imports/<int:pk>/problems.txt": [
        Entry(obj("/workspace/imports/{pk}/problems.txt", "import_job"), MANAGER_ONLY)
    ],
    "workspace/imports/<int:pk>/apply/": [
        Entry(obj("/workspace/imports/{pk}/apply/", "import_job"), MANAGER_WRITE, "post")
    ],
    "portal/": [Entry(fixed("/portal/"), PORTAL)],
    "portal/agreements/": [Entry(fixed("/portal/agreements/"), PORTAL)],
    "portal/agreements/<int:pk>/document/": [
        Entry(obj("/portal/agreements/{pk}/document/", "agreement"), PORTAL)
    ],
    "portal/accounts/": [Entry(fixed("/portal/accounts/"), PORTAL)],
    "portal/feedback/": [Entry(fixed("/portal/feedback/"), PORTAL)],
    "portal/feedback/new/": [Entry(fixed("/portal/feedback/new/"), PORTAL)],
    "portal/feedback/<int:pk>/": [Entry(obj("/portal/feedback/{pk}/", "feedback"), PORTAL)],
    "portal/feedback/<int:pk>/attachment/": [
        Entry(obj("/portal/feedback/{pk}/attachment/", "feedback"), PORTAL)
    ],
    "portal/profile/": [Entry(fixed("/portal/profile/"), PORTAL)],
    "portal/profile/tokens/revoke/": [
        Entry(fixed("/portal/profile/tokens/revoke/"), PORTAL, "post"),
        Entry(fixed("/portal/profile/tokens/revoke/"), row(LOGIN, LOCKED, *[NOT_FOUND] * 4)),
    ],
    # Any invalid link answers the same 400, whoever asks.
    "portal/invitation/<str:uidb64>/<str:token>/": [
        Entry(fixed("/portal/invitation/MQ/bad-token/"), row(BAD, BAD, BAD, BAD, BAD, BAD))
    ],
    "dashboard/": [Entry(fixed("/dashboard/"), MANAGER_EXEC)],
    "dashboard/digest/": [Entry(fixed("/dashboard/digest/"), MANAGER_EXEC)],
    "dashboard/export/<slug:table>.csv": [
        Entry(fixed("/dashboard/export/white_space.csv"), MANAGER_EXEC)
    ],
    "dashboard/partners/<int:pk>/health/": [
        Entry(obj("/dashboard/partners/{pk}/health/", "partner"), INTERNAL_READ)
    ],
    "i18n/setlang/": [Entry(fixed("/i18n/setlang/"), row(OK, OK, OK, OK, OK, OK), "post")],
}

# Deal registrations and webhooks (partners/urls_registrations.py, urls_portal_registrations.py).
PORTAL_WRITE = row(LOGIN, ANY_WRITE, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND)
REGISTRATION = "workspace/registrations/<int:pk>/"
MATRIX.update(
    {
        "workspace/registrations/": [Entry(fixed("/workspace/registrations/"), INTERNAL_READ)],
        REGISTRATION: [Entry(obj("/workspace/registrations/{pk}/", "registration"), INTERNAL_READ)],
        **{
            f"{REGISTRATION}{action}/": [
                Entry(
                    obj(f"/workspace/registrations/{{pk}}/{action}/", "decided_registration"),
                    MANAGER_WRITE,
                    "post",
                )
            ]
            for action in ("approve", "reject", "won", "lost", "extend", "decline-extension")
        },
        f"{REGISTRATION}account/": [
            Entry(
                obj("/workspace/registrations/{pk}/account/", "decided_registration"),
                MANAGER_WRITE,
                "post",
            )
        ],
        "workspace/partners/<int:pk>/registrations/": [
            Entry(obj("/workspace/partners/{pk}/registrations/", "partner"), INTERNAL_READ)
        ],
        "workspace/partners/<int:pk>/channel-manager/": [
            Entry(
                obj("/workspace/partners/{pk}/channel-manager/", "partner"), MANAGER_WRITE, "post"
            )
        ],
        "workspace/webhooks/": [
            Entry(fixed("/workspace/webhooks/"), MANAGER_ONLY),
            Entry(fixed("/workspace/webhooks/"), MANAGER_WRITE, "post"),
        ],
        "workspace/webhooks/<int:pk>/": [
            Entry(obj("/workspace/webhooks/{pk}/", "webhook"), MANAGER_ONLY)
        ],
        "workspace/webhooks/<int:pk>/toggle/": [
            Entry(obj("/workspace/webhooks/{pk}/toggle/", "webhook"), MANAGER_WRITE, "post")
        ],
        "workspace/webhooks/<int:pk>/ping/": [
            Entry(obj("/workspace/webhooks/{pk}/ping/", "webhook"), MANAGER_WRITE, "post")
        ],
        "workspace/webhooks/deliveries/<int:pk>/redeliver/": [
            Entry(
                obj("/workspace/webhooks/deliveries/{pk}/redeliver/", "delivery"),
                MANAGER_WRITE,
                "post",
            )
        ],
        "workspace/opportunities/": [Entry(fixed("/workspace/opportunities/"), INTERNAL_READ)],
        "workspace/opportunities/board/": [
            Entry(fixed("/workspace/opportunities/board/"), INTERNAL_READ)
        ],
        "workspace/opportunities/new/": [
            Entry(fixed("/workspace/opportunities/new/"), MANAGER_ONLY),
            Entry(fixed("/workspace/opportunities/new/"), MANAGER_WRITE, "post"),
        ],
        "workspace/opportunities/<int:pk>/": [
            Entry(obj("/workspace/opportunities/{pk}/", "opportunity"), INTERNAL_READ)
        ],
        "workspace/opportunities/<int:pk>/<slug:action>/": [
            Entry(
                obj(f"/workspace/opportunities/{{pk}}/{action}/", "opportunity"),
                MANAGER_WRITE,
                "post",
            )
            for action in ("move", "win", "lose", "reopen", "end")
        ],
        "portal/opportunities/": [Entry(fixed("/portal/opportunities/"), PORTAL)],
        "portal/opportunities/<int:pk>/": [
            Entry(obj("/portal/opportunities/{pk}/", "opportunity"), PORTAL)
        ],
        "portal/registrations/": [Entry(fixed("/portal/registrations/"), PORTAL)],
        "portal/registrations/new/": [
            Entry(fixed("/portal/registrations/new/"), PORTAL),
            Entry(fixed("/portal/registrations/new/"), PORTAL_WRITE, "post"),
        ],
        "portal/registrations/<int:pk>/": [
            Entry(obj("/portal/registrations/{pk}/", "registration"), PORTAL)
        ],
        "portal/registrations/<int:pk>/extend/": [
            Entry(obj("/portal/registrations/{pk}/extend/", "registration"), PORTAL_WRITE, "post")
        ],
        "portal/registrations/<int:pk>/withdraw/": [
            Entry(obj("/portal/registrations/{pk}/withdraw/", "registration"), PORTAL_WRITE, "post")
        ],
    }
)

# A delete by the manager leaves nothing for the admin after it.
MANAGER_DELETE = row(LOGIN, NOT_FOUND, NOT_FOUND, ANY_WRITE, NOT_FOUND, NOT_FOUND)
# The partner programme (partners/urls_programme.py, urls_survey.py; analytics/urls_programme.py,
# urls_portal.py).
MATRIX.update(
    {
        "workspace/programme/": [Entry(fixed("/workspace/programme/"), INTERNAL_READ)],
        "workspace/programme/settings/": [
            Entry(fixed("/workspace/programme/settings/"), MANAGER_WRITE, "post")
        ],
        "workspace/programme/tiers/new/": [
            Entry(fixed("/workspace/programme/tiers/new/"), MANAGER_ONLY),
            Entry(fixed("/workspace/programme/tiers/new/"), MANAGER_WRITE, "post"),
        ],
        "workspace/programme/tiers/<int:pk>/edit/": [
            Entry(obj("/workspace/programme/tiers/{pk}/edit/", "tier"), MANAGER_ONLY),
            Entry(obj("/workspace/programme/tiers/{pk}/edit/", "tier"), MANAGER_WRITE, "post"),
        ],
        "workspace/programme/tiers/<int:pk>/delete/": [
            Entry(
                obj("/workspace/programme/tiers/{pk}/delete/", "spare_tier"), MANAGER_DELETE, "post"
            )
        ],
        "workspace/programme/history/": [
            Entry(fixed("/workspace/programme/history/"), INTERNAL_READ)
        ],
        "workspace/programme/history/<int:pk>/": [
            Entry(obj("/workspace/programme/history/{pk}/", "tier_change"), INTERNAL_READ)
        ],
        "workspace/partners/<int:pk>/programme/": [
            Entry(obj("/workspace/partners/{pk}/programme/", "partner"), INTERNAL_READ)
        ],
        "workspace/partners/<int:pk>/tier/": [
            Entry(obj("/workspace/partners/{pk}/tier/", "partner"), MANAGER_WRITE, "post")
        ],
        "workspace/partners/<int:pk>/certifications/": [
            Entry(obj("/workspace/partners/{pk}/certifications/", "partner"), MANAGER_WRITE, "post")
        ],
        "workspace/certifications/<int:pk>/remove/": [
            Entry(
                obj("/workspace/certifications/{pk}/remove/", "certification"),
                MANAGER_DELETE,
                "post",
            )
        ],
        "workspace/partners/<int:pk>/targets/": [
            Entry(obj("/workspace/partners/{pk}/targets/", "partner"), MANAGER_WRITE, "post")
        ],
        "workspace/targets/reps/": [
            Entry(fixed("/workspace/targets/reps/"), MANAGER_WRITE, "post")
        ],
        "workspace/targets/<int:pk>/delete/": [
            Entry(obj("/workspace/targets/{pk}/delete/", "target"), MANAGER_DELETE, "post")
        ],
        "workspace/targets/": [Entry(fixed("/workspace/targets/"), INTERNAL_READ)],
        "workspace/partners/<int:pk>/scorecard/": [
            Entry(obj("/workspace/partners/{pk}/scorecard/", "partner"), INTERNAL_READ)
        ],
        "workspace/surveys/": [Entry(fixed("/workspace/surveys/"), INTERNAL_READ)],
        "workspace/surveys/new/": [
            Entry(fixed("/workspace/surveys/new/"), MANAGER_ONLY),
            Entry(fixed("/workspace/surveys/new/"), MANAGER_WRITE, "post"),
        ],
        "workspace/surveys/<int:pk>/": [
            Entry(obj("/workspace/surveys/{pk}/", "survey"), INTERNAL_READ)
        ],
        "workspace/surveys/<int:pk>/edit/": [
            Entry(obj("/workspace/surveys/{pk}/edit/", "survey"), MANAGER_ONLY),
            Entry(obj("/workspace/surveys/{pk}/edit/", "survey"), MANAGER_WRITE, "post"),
        ],
        "workspace/surveys/<int:pk>/send/": [
            Entry(obj("/workspace/surveys/{pk}/send/", "survey"), MANAGER_WRITE, "post")
        ],
        "workspace/surveys/waves/<int:pk>/": [
            Entry(obj("/workspace/surveys/waves/{pk}/", "wave"), INTERNAL_READ)
        ],
        "workspace/reviews/": [Entry(fixed("/workspace/reviews/"), INTERNAL_READ)],
        "workspace/reviews/open/": [
            Entry(fixed("/workspace/reviews/open/"), MANAGER_WRITE, "post")
        ],
        "workspace/reviews/<int:pk>/": [
            Entry(obj("/workspace/reviews/{pk}/", "review"), INTERNAL_READ)
        ],
        "workspace/reviews/<int:pk>/record/": [
            Entry(obj("/workspace/reviews/{pk}/record/", "review"), MANAGER_WRITE, "post")
        ],
        "workspace/reviews/<int:pk>/actions/": [
            Entry(obj("/workspace/reviews/{pk}/actions/", "review"), MANAGER_WRITE, "post")
        ],
        "workspace/reviews/<int:pk>/send/": [
            Entry(obj("/workspace/reviews/{pk}/send/", "review"), MANAGER_WRITE, "post")
        ],
        # Its owner (the manager) or a manager; anyone else as if it did not exist.
        "workspace/reviews/actions/<int:pk>/done/": [
            Entry(
                obj("/workspace/reviews/actions/{pk}/done/", "review_action"),
                row(LOGIN, NOT_FOUND, NOT_FOUND, ANY_WRITE, NOT_FOUND, ANY_WRITE),
                "post",
            )
        ],
        "portal/scorecard/": [Entry(fixed("/portal/scorecard/"), PORTAL)],
        # The signed link needs no sign-in; anything else answers the same 404 to everyone.
        "survey/<str:token>/": [
            Entry(lambda objects: f"/survey/{objects['survey_token']}/", EVERYONE),
            Entry(
                fixed("/survey/not-a-link/"),
                row(NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND),
            ),
        ],
    }
)

UNAUTHORISED = "401"  # the API asks for credentials
FORBIDDEN = "403"  # the caller sees the endpoint or object but may not write it

API_READ = row(UNAUTHORISED, NOT_FOUND, OK, OK, OK, OK)
API_PARTNER_READ = row(UNAUTHORISED, OK, OK, OK, OK, OK)
API_MANAGER_WRITE = row(UNAUTHORISED, NOT_FOUND, FORBIDDEN, ANY_WRITE, FORBIDDEN, ANY_WRITE)
API_MANAGER_WRITE_PARTNER_SEES = row(
    UNAUTHORISED, FORBIDDEN, FORBIDDEN, ANY_WRITE, FORBIDDEN, ANY_WRITE
)
API_PARTNER_WRITE = row(UNAUTHORISED, ANY_WRITE, FORBIDDEN, ANY_WRITE, FORBIDDEN, ANY_WRITE)
API_PARTNER_ONLY = row(UNAUTHORISED, OK, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND)
API_PARTNER_ONLY_WRITE = row(UNAUTHORISED, ANY_WRITE, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN)
API_LEADERSHIP = row(UNAUTHORISED, NOT_FOUND, NOT_FOUND, OK, OK, OK)
API_DOCS = row(NOT_FOUND, NOT_FOUND, OK, OK, OK, OK)
V1 = "api/v1/"


def api(path: str) -> Callable[[dict[str, Any]], str]:
    return lambda objects: (
        "/api/v1/" + path.format(**{k: getattr(v, "pk", v) for k, v in objects.items()})
    )


MATRIX.update(
    {
        V1 + "auth/token/": [
            Entry(api("auth/token/"), row(BAD, BAD, BAD, BAD, BAD, BAD), "post"),
            # Revokes the token the request is sent with; a session has none to revoke.
            Entry(api("auth/token/"), row(UNAUTHORISED, BAD, BAD, BAD, BAD, BAD), "delete"),
        ],
        V1 + "^auth/tokens/$": [Entry(api("auth/tokens/"), API_PARTNER_READ)],
        # DELETE only (who may revoke whose: tests/api/test_tokens.py).
        V1 + "^auth/tokens/(?P<pk>[^/.]+)/$": [
            Entry(api("auth/tokens/{token}/"), row(UNAUTHORISED, *[LOCKED] * 5))
        ],
        V1 + "metrics/segments/": [Entry(api("metrics/segments/?week=2026-W46"), API_LEADERSHIP)],
        V1 + "metrics/rollup/": [
            Entry(api("metrics/rollup/?week=2026-W46&by=region"), API_LEADERSHIP)
        ],
        V1 + "metrics/trend/": [
            Entry(api("metrics/trend/?first=2026-W40&last=2026-W46"), API_LEADERSHIP)
        ],
        V1 + "metrics/partners/": [Entry(api("metrics/partners/?week=2026-W46"), API_LEADERSHIP)],
        V1 + "metrics/registrations/": [
            Entry(api("metrics/registrations/?first=2026-W40&last=2026-W46"), API_LEADERSHIP)
        ],
        V1 + "metrics/weeks/": [Entry(api("metrics/weeks/"), API_LEADERSHIP)],
        V1 + "metrics/revenue/": [Entry(api("metrics/revenue/?week=2026-W46"), API_LEADERSHIP)],
        V1 + "^metrics/runs/$": [Entry(api("metrics/runs/"), API_LEADERSHIP)],
        V1 + "^metrics/runs/(?P<pk>[^/.]+)/$": [Entry(api("metrics/runs/{run}/"), API_LEADERSHIP)],
        V1 + "^regions/$": [Entry(api("regions/"), API_READ)],
        V1 + "^regions/(?P<pk>[^/.]+)/$": [Entry(api("regions/{region}/"), API_READ)],
        V1 + "^verticals/$": [Entry(api("verticals/"), API_READ)],
        V1 + "^verticals/(?P<pk>[^/.]+)/$": [Entry(api("verticals/{vertical}/"), API_READ)],
        V1 + "^accounts/$": [Entry(api("accounts/"), API_PARTNER_READ)],
        V1 + "^accounts/(?P<pk>[^/.]+)/$": [Entry(api("accounts/{rep_account}/"), API_READ)],
        V1 + "^reps/$": [Entry(api("reps/"), API_READ)],
        V1 + "^reps/(?P<pk>[^/.]+)/$": [Entry(api("reps/{rep}/"), API_READ)],
        V1 + "^coverage/$": [
            Entry(api("coverage/"), API_READ),
            Entry(api("coverage/"), API_MANAGER_WRITE, "post"),
        ],
        V1 + "^coverage/(?P<pk>[^/.]+)/$": [Entry(api("coverage/{coverage}/"), API_READ)],
        V1 + "^coverage/(?P<pk>[^/.]+)/end/$": [
            Entry(api("coverage/{coverage}/end/"), API_MANAGER_WRITE, "post")
        ],
        V1 + "^partners/$": [
            Entry(api("partners/"), API_PARTNER_READ),
            Entry(api("partners/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^partners/(?P<pk>[^/.]+)/$": [
            Entry(api("partners/{partner}/"), API_PARTNER_READ),
            Entry(api("partners/{partner}/"), API_MANAGER_WRITE_PARTNER_SEES, "put"),
            Entry(api("partners/{partner}/"), API_MANAGER_WRITE_PARTNER_SEES, "patch"),
        ],
        V1 + "^contacts/$": [
            Entry(api("contacts/"), API_READ),
            Entry(api("contacts/"), API_MANAGER_WRITE, "post"),
        ],
        V1 + "^contacts/(?P<pk>[^/.]+)/$": [Entry(api("contacts/{contact}/"), API_READ)],
        V1 + "^agreements/$": [
            Entry(api("agreements/"), API_PARTNER_READ),
            Entry(api("agreements/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^agreements/(?P<pk>[^/.]+)/$": [
            Entry(api("agreements/{agreement}/"), API_PARTNER_READ),
            Entry(api("agreements/{agreement}/"), API_MANAGER_WRITE_PARTNER_SEES, "put"),
            Entry(api("agreements/{agreement}/"), API_MANAGER_WRITE_PARTNER_SEES, "patch"),
        ],
        V1 + "^agreements/(?P<pk>[^/.]+)/activate/$": [
            Entry(api("agreements/{agreement}/activate/"), API_MANAGER_WRITE_PARTNER_SEES, "post")
        ],
        V1 + "^agreements/(?P<pk>[^/.]+)/renew/$": [
            Entry(api("agreements/{agreement}/renew/"), API_MANAGER_WRITE_PARTNER_SEES, "post")
        ],
        V1 + "^agreements/(?P<pk>[^/.]+)/terminate/$": [
            Entry(api("agreements/{agreement}/terminate/"), API_MANAGER_WRITE_PARTNER_SEES, "post")
        ],
        V1 + "^agreements/(?P<pk>[^/.]+)/document/$": [
            Entry(api("agreements/{agreement}/document/"), API_PARTNER_READ)
        ],
        V1 + "^feedback/$": [
            Entry(api("feedback/"), API_PARTNER_READ),
            Entry(api("feedback/"), API_PARTNER_WRITE, "post"),
        ],
        V1 + "^feedback/(?P<pk>[^/.]+)/$": [Entry(api("feedback/{feedback}/"), API_PARTNER_READ)],
        # Like the portal download: the workspace has none, so internal users get a 404.
        V1 + "^feedback/(?P<pk>[^/.]+)/attachment/$": [
            Entry(api("feedback/{feedback}/attachment/"), API_PARTNER_ONLY)
        ],
        V1 + "^feedback/(?P<pk>[^/.]+)/notes/$": [
            Entry(api("feedback/{feedback}/notes/"), API_READ),
            Entry(api("feedback/{feedback}/notes/"), API_MANAGER_WRITE, "post"),
        ],
        V1 + "^feedback/(?P<pk>[^/.]+)/replies/$": [
            Entry(api("feedback/{feedback}/replies/"), API_PARTNER_READ),
            Entry(api("feedback/{feedback}/replies/"), API_PARTNER_WRITE, "post"),
        ],
        V1 + "^feedback/(?P<pk>[^/.]+)/triage/$": [
            Entry(api("feedback/{feedback}/triage/"), API_MANAGER_WRITE_PARTNER_SEES, "post")
        ],
        V1 + "^opportunities/$": [
            Entry(api("opportunities/"), API_PARTNER_READ),
            Entry(api("opportunities/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^opportunities/(?P<pk>[^/.]+)/$": [
            Entry(api("opportunities/{opportunity}/"), API_PARTNER_READ)
        ],
        V1 + "^deal-registrations/$": [
            Entry(api("deal-registrations/"), API_PARTNER_READ),
            Entry(api("deal-registrations/"), API_PARTNER_ONLY_WRITE, "post"),
        ],
        V1 + "^deal-registrations/(?P<pk>[^/.]+)/$": [
            Entry(api("deal-registrations/{registration}/"), API_PARTNER_READ)
        ],
        **{
            V1 + f"^deal-registrations/(?P<pk>[^/.]+)/{action}/$": [
                Entry(
                    api(f"deal-registrations/{{registration}}/{action}/"),
                    API_MANAGER_WRITE_PARTNER_SEES,
                    "post",
                )
            ]
            for action in ("approve", "reject", "won", "lost")
        },
        V1 + "^deal-registrations/(?P<pk>[^/.]+)/withdraw/$": [
            Entry(
                api("deal-registrations/{registration}/withdraw/"), API_PARTNER_ONLY_WRITE, "post"
            )
        ],
        V1 + "^deal-registrations/(?P<pk>[^/.]+)/extend/$": [
            Entry(api("deal-registrations/{registration}/extend/"), API_PARTNER_WRITE, "post")
        ],
        V1 + "^programme/tiers/$": [
            Entry(api("programme/tiers/"), API_PARTNER_READ),
            Entry(api("programme/tiers/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^programme/tiers/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/tiers/{tier}/"), API_PARTNER_READ),
            Entry(api("programme/tiers/{tier}/"), API_MANAGER_WRITE_PARTNER_SEES, "put"),
        ],
        V1 + "^programme/tier-changes/$": [Entry(api("programme/tier-changes/"), API_PARTNER_READ)],
        V1 + "^programme/tier-changes/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/tier-changes/{tier_change}/"), API_PARTNER_READ)
        ],
        V1 + "^programme/certifications/$": [
            Entry(api("programme/certifications/"), API_PARTNER_READ),
            Entry(api("programme/certifications/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^programme/certifications/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/certifications/{api_certification}/"), API_PARTNER_READ)
        ],
        V1 + "^programme/targets/$": [
            Entry(api("programme/targets/"), API_PARTNER_READ),
            Entry(api("programme/targets/"), API_MANAGER_WRITE_PARTNER_SEES, "post"),
        ],
        V1 + "^programme/targets/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/targets/{api_target}/"), API_PARTNER_READ)
        ],
        V1 + "^programme/surveys/$": [
            Entry(api("programme/surveys/"), API_READ),
            Entry(api("programme/surveys/"), API_MANAGER_WRITE, "post"),
        ],
        V1 + "^programme/surveys/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/surveys/{survey}/"), API_READ),
            Entry(api("programme/surveys/{survey}/"), API_MANAGER_WRITE, "put"),
        ],
        V1 + "^programme/survey-waves/$": [Entry(api("programme/survey-waves/"), API_READ)],
        V1 + "^programme/survey-waves/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/survey-waves/{wave}/"), API_READ)
        ],
        V1 + "^programme/survey-responses/$": [
            Entry(api("programme/survey-responses/"), API_PARTNER_READ)
        ],
        V1 + "^programme/survey-responses/(?P<pk>[^/.]+)/$": [
            Entry(api("programme/survey-responses/{survey_response}/"), API_PARTNER_READ)
        ],
        # A partner gets its own; internal users name the partner. No week yet: 404 for all.
        V1 + "programme/scorecard/": [
            Entry(
                api("programme/scorecard/?partner={partner}"),
                row(UNAUTHORISED, *[NOT_FOUND] * 5),
            )
        ],
        V1 + "programme/drivers/": [
            Entry(api("programme/drivers/"), row(UNAUTHORISED, *[NOT_FOUND] * 5))
        ],
        "api/schema/": [Entry(fixed("/api/schema/"), API_DOCS)],
        "api/docs/": [Entry(fixed("/api/docs/"), API_DOCS)],
        "api/redoc/": [Entry(fixed("/api/redoc/"), API_DOCS)],
    }
)

# The admin has its own login: only staff get in, and partner users never see it.
ADMIN = row(LOGIN, NOT_FOUND, LOGIN, LOGIN, LOGIN, OK)
ADMIN_PATHS = [
    "/admin/",
    "/admin/partners/agreement/",
    "/admin/crm/account/",
    "/admin/crm/auditevent/",
    "/admin/partners/dealregistration/",
    "/admin/partners/webhookdelivery/",
    "/admin/channels/opportunity/",
    "/admin/channels/opportunitysubstage/",
    "/admin/crm/currencyrate/",
]


def _routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[str]:
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


@pytest.fixture
def objects(cast: Cast) -> dict[str, Any]:
    today = timezone.localdate()
    agreement = AgreementFactory(partner=cast.partner_a, start_date=today - timedelta(days=30))
    agreement.signed_document.save("s.pdf", SimpleUploadedFile("s.pdf", b"%PDF-1.4\n%%EOF\n"))
    feedback = FeedbackFactory(partner=cast.partner_a)
    feedback.attachment.save("a.png", SimpleUploadedFile("a.png", b"\x89PNG\r\n\x1a\n0000"))
    rep_account = AccountFactory()
    coverage = CoverageAssignment.objects.create(
        account=rep_account, kind="direct", rep=cast.rep, start_date=today - timedelta(days=5)
    )
    SegmentSnapshot.objects.create(
        week="2026-W46",
        as_of=today - timedelta(days=today.weekday() + 1),
        final=True,
        region=rep_account.region.code,
        vertical=rep_account.vertical.code,
        size_band="smb",
        **dict.fromkeys(COUNT_COLUMNS, 0),
    )
    # Registrations of partner-a on the rep's account: partner-a and the rep both see them. The
    # workspace's decisions change one; the portal and the API are aimed at the other.
    registration, decided_registration = (
        DealRegistration.objects.create(
            partner=cast.partner_a,
            submitted_by=cast.partner_a_user,
            company_name=rep_account.name,
            region=rep_account.region,
            vertical=rep_account.vertical,
            size_band="smb",
            account=rep_account,
        )
        for _ in range(2)
    )
    webhook = WebhookEndpoint.objects.create(
        url="https://hooks.example/crm", secret="s" * 20, events=["agreement.status_changed"]
    )
    return {
        "contact": PartnerContactFactory(partner=cast.partner_a),
        "portal_user": cast.partner_a_user,
        "token": api_token_issue(user=cast.partner_b_user)[0],
        "region": rep_account.region,
        "vertical": rep_account.vertical,
        "rep": cast.rep,
        "partner": cast.partner_a,
        "agreement": agreement,
        "draft": AgreementFactory(
            partner=cast.partner_a,
            status="draft",
            signed_on=None,
            start_date=today,
            end_date=today + timedelta(days=365),
        ),
        "feedback": feedback,
        "rep_account": rep_account,
        "coverage": coverage,
        # A recent final snapshot keeps the health check green.
        "run": MetricsRun.objects.create(
            week="2026-W46",
            as_of=today - timedelta(days=today.weekday() + 1),
            final=True,
            status="succeeded",
            started_at=timezone.now(),
            finished_at=timezone.now(),
        ),
        "registration": registration,
        "decided_registration": decided_registration,
        "opportunity": OpportunityFactory(
            account=rep_account, channel="partner", partner=cast.partner_a
        ),
        "webhook": webhook,
        "delivery": WebhookDelivery.objects.create(
            endpoint=webhook,
            event="ping",
            payload={"event": "ping"},
            status="delivered",
            next_attempt_at=timezone.now(),
        ),
        "import_job": ImportJob.objects.create(
            folder="matrix-job",
            file_names=["regions.csv"],
            status="invalid",
            problems=["regions.csv:1: code: missing column"],
        ),
        **_programme_objects(cast),
    }


def _programme_objects(cast: Cast) -> dict[str, Any]:
    today = timezone.localdate()
    partner = cast.partner_a
    tier_set("silver")
    spare = tier_set("diamond")
    PartnerContactFactory(partner=partner, email="survey@alpha.example")
    survey = survey_create(
        values=SurveyValues(name="Matrix survey", categories=["support"]), by=cast.manager
    )
    wave = survey_wave_open(survey=survey, opens_on=today).wave
    invitation = wave.invitations.filter(partner=partner).first()
    assert invitation is not None
    response = survey_response_submit(invitation=invitation, answer=SurveyAnswer({"support": 4}))
    review = business_review_open(
        partner=partner, year=today.year, quarter=(today.month - 1) // 3 + 1, by=cast.manager
    )
    return {
        "tier": Tier.objects.get(code="silver"),
        "spare_tier": spare,
        "tier_change": tier_change_made(partner=partner, tier="silver", by=cast.manager),
        "certification": certification_add(partner=partner, name="Cert", earned_on=today),
        "target": target_set(year=today.year, partner=partner, accounts_covered=5),
        "api_certification": certification_add(partner=partner, name="API", earned_on=today),
        "api_target": target_set(year=today.year - 1, partner=partner, conversions=3),
        "survey": survey,
        "wave": wave,
        "survey_response": response,
        "survey_token": survey_link_token(invitation),
        "review": review,
        "review_action": review_action_add(
            review=review, description="Plan", due_on=today, owner=cast.manager
        ),
    }


def _users(cast: Cast) -> dict[str, Any]:
    admin = UserFactory(username="admin", is_staff=True, is_superuser=True)
    return {
        "partner": cast.partner_a_user,
        "rep": cast.rep_user,
        "manager": cast.manager,
        "executive": cast.executive,
        "admin": admin,
    }


def _clients(users: dict[str, Any]) -> dict[str, Client]:
    clients = {"anonymous": Client()}
    for role, user in users.items():
        clients[role] = Client()
        clients[role].force_login(user)
    return clients


def _outcome(response: Any) -> str:
    status = response.status_code
    if status in (301, 302) and response["Location"].split("?")[0].endswith("/login/"):
        return LOGIN
    if status == 404:
        return NOT_FOUND
    if status == 405:
        return LOCKED
    if status == 400:
        return BAD
    if status == 401:
        return UNAUTHORISED
    if status == 403:
        return FORBIDDEN
    if status < 400:
        return OK
    return str(status)


def test_it_covers_every_route() -> None:
    routes = {route for route in _routes() if not route.startswith("admin/")}
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"decide who may reach these routes and add them to MATRIX: {missing}"
    assert not stale, f"these MATRIX routes no longer exist: {stale}"


def test_it_gives_each_role_the_expected_outcome(cast: Cast, objects: dict[str, Any]) -> None:
    users = _users(cast)
    clients = _clients(users)
    failures = []
    for route, entries in MATRIX.items():
        for entry in entries:
            url = entry.url(objects)
            for role, expected in entry.expected.items():
                if url.startswith("/api/") and entry.method != "get":
                    response = getattr(clients[role], entry.method)(
                        url, {}, content_type="application/json"
                    )
                else:
                    response = getattr(clients[role], entry.method)(url)
                outcome = _outcome(response)
                if expected == ANY_WRITE:
                    # The write reached the view: done, or refused for its content (or, 409, for
                    # the object's state, which an earlier role's write may have changed).
                    good = outcome in (OK, BAD, LOCKED) or response.status_code in (409, 415)
                else:
                    good = outcome == expected
                if not good:
                    failures.append(
                        f"{entry.method.upper()} {url} as {role}: {outcome}, expected {expected}"
                    )
                if route == "accounts/logout/" and role != "anonymous":
                    clients[role].force_login(
                        clients[role].session.get("_auth_user_id")
                        and None
                        or {
                            "partner": cast.partner_a_user,
                            "rep": cast.rep_user,
                            "manager": cast.manager,
                            "executive": cast.executive,
                        }.get(role, cast.manager)
                    )
    assert not failures, "\n".join(failures)


def test_it_keeps_the_admin_to_staff(cast: Cast) -> None:
    clients = _clients(_users(cast))
    failures = [
        f"{path} as {role}: {_outcome(clients[role].get(path))}, expected {expected}"
        for path in ADMIN_PATHS
        for role, expected in ADMIN.items()
        if _outcome(clients[role].get(path)) != expected
    ]
    assert not failures, "\n".join(failures)
