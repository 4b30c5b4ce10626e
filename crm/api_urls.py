"""The REST API: /api/v1/ (every app's routes), the token endpoint, and the OpenAPI schema
with its offline viewers (internal users only)."""

from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from analytics.api import programme_views as programme_figures_api
from analytics.api import views as analytics_api
from channels.api import views as channels_api
from crm.api import views as crm_api
from crm.api.auth import ApiTokenViewSet, TokenView
from partners.api import coverage_views as coverage_api
from partners.api import opportunity_views as opportunities_api
from partners.api import programme_views as programme_api
from partners.api import registration_views as registrations_api
from partners.api import views as partners_api

router = DefaultRouter()
# JSON only, and no browsable root: the schema at /api/schema/ is the index.
router.include_root_view = False
router.include_format_suffixes = False
router.register("regions", crm_api.RegionViewSet, basename="region")
router.register("verticals", crm_api.VerticalViewSet, basename="vertical")
router.register("accounts", partners_api.AccountViewSet, basename="account")
router.register("reps", channels_api.SalesRepViewSet, basename="rep")
router.register("coverage", coverage_api.CoverageAssignmentViewSet, basename="coverage")
router.register("partners", partners_api.PartnerViewSet, basename="partner")
router.register("contacts", partners_api.PartnerContactViewSet, basename="contact")
router.register("agreements", partners_api.AgreementViewSet, basename="agreement")
router.register("feedback", partners_api.FeedbackViewSet, basename="feedback")
router.register("metrics/runs", analytics_api.MetricsRunViewSet, basename="metrics-run")
router.register("auth/tokens", ApiTokenViewSet, basename="api-token")
router.register("opportunities", opportunities_api.OpportunityViewSet, basename="opportunity")
router.register(
    "deal-registrations", registrations_api.DealRegistrationViewSet, basename="deal-registration"
)
router.register("programme/tiers", programme_api.TierViewSet, basename="tier")
router.register("programme/tier-changes", programme_api.TierChangeViewSet, basename="tier-change")
router.register(
    "programme/certifications", programme_api.CertificationViewSet, basename="certification"
)
router.register("programme/targets", programme_figures_api.TargetViewSet, basename="target")
router.register("programme/surveys", programme_api.SurveyViewSet, basename="survey")
router.register("programme/survey-waves", programme_api.SurveyWaveViewSet, basename="survey-wave")
router.register(
    "programme/survey-responses",
    programme_api.SurveyResponseViewSet,
    basename="survey-response",
)

v1 = [
    path("auth/token/", TokenView.as_view(), name="token"),
    path("metrics/segments/", analytics_api.MetricsSegmentsView.as_view(), name="metrics-segments"),
    path("metrics/rollup/", analytics_api.MetricsRollupView.as_view(), name="metrics-rollup"),
    path("metrics/trend/", analytics_api.MetricsTrendView.as_view(), name="metrics-trend"),
    path("metrics/partners/", analytics_api.MetricsPartnersView.as_view(), name="metrics-partners"),
    path(
        "metrics/registrations/",
        analytics_api.MetricsRegistrationsView.as_view(),
        name="metrics-registrations",
    ),
    path("metrics/weeks/", analytics_api.MetricsWeeksView.as_view(), name="metrics-weeks"),
    path(
        "programme/scorecard/",
        programme_figures_api.ScorecardView.as_view(),
        name="programme-scorecard",
    ),
    path(
        "programme/drivers/",
        programme_figures_api.DriversView.as_view(),
        name="programme-drivers",
    ),
    path("metrics/revenue/", analytics_api.MetricsRevenueView.as_view(), name="metrics-revenue"),
    *router.urls,
]

app_name = "api"

urlpatterns = [
    path("v1/", include((v1, "v1"))),
    path("schema/", crm_api.SchemaView.as_view(), name="schema"),
    path(
        "docs/",
        crm_api.OfflineSwaggerView.as_view(url_name="api:schema"),
        name="docs",
    ),
    path(
        "redoc/",
        crm_api.OfflineRedocView.as_view(url_name="api:schema"),
        name="redoc",
    ),
]
