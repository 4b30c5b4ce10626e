"""The partner programme's snapshot figures over the API: yearly targets with their attainment,
a partner's scorecard and the drivers of satisfaction. Figures come from `analytics.reports`;
who sees which target or scorecard is decided by the programme's and partners' selectors."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any, TypedDict, cast

import django_filters
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import metrics, programme, reports
from analytics.programme_dashboard import drivers_section
from analytics.scorecard import scorecard_for, scorecard_payload
from channels.models import SalesRep
from channels.selectors import reps_visible_to
from crm.api.permissions import InternalAndPartnerReadManagerWrite, LeadershipOnly
from crm.forms import object_id
from crm.idempotency import once_per_idempotency_key
from crm.roles import Role, role_of
from partners.models import Partner
from partners.programme_models import Target
from partners.programme_selectors import targets_visible_to
from partners.programme_services import target_delete, target_set
from partners.selectors import partner_of_user, partners_visible_to


def _year_week(year: int) -> str | None:
    return next(
        (week for week in reports.programme_weeks() if metrics.iso_week_as_of(week).year == year),
        None,
    )


class TargetAttainment(TypedDict):
    """A target's figures to date in the latest weekly snapshot of its year and the share of
    each reached (rule 22)."""

    week: str
    as_of: date
    accounts_covered: int
    conversions: int
    sourced_revenue: Decimal | None
    revenue_target: Decimal | None
    accounts_covered_share: float | None
    conversions_share: float | None
    revenue_share: float | None


# The snapshot figures of each target's owner, by ("partner", id) or ("rep", id).
OwnerFigures = dict[tuple[str, int], reports.ProgrammeFigures | reports.RepFigures]


class TargetSerializer(serializers.ModelSerializer[Target]):
    partner = serializers.IntegerField(source="partner_id", read_only=True, allow_null=True)
    rep = serializers.IntegerField(source="rep_id", read_only=True, allow_null=True)
    attainment = serializers.SerializerMethodField(
        help_text="The target's figures to date in the latest weekly snapshot of its year "
        "(accounts covered on that day; conversions and sourced revenue since 1 January), the "
        "revenue target used (a partner's blank one is its agreements' annual target) and "
        "each share reached; null before the year's first snapshot."
    )

    class Meta:
        model = Target
        fields = [
            "id",
            "year",
            "partner",
            "rep",
            "accounts_covered",
            "conversions",
            "revenue",
            "attainment",
        ]
        read_only_fields = fields

    def get_attainment(self, target: Target) -> TargetAttainment | None:
        figures: OwnerFigures = self.context.get("attainment", {})
        key = ("partner", target.partner_id) if target.partner_id else ("rep", target.rep_id or 0)
        row = figures.get(key)
        if row is None:
            return None
        covered, conversions, revenue, revenue_target = (
            row.covered_accounts,
            row.conversions_ytd,
            row.sourced_revenue_ytd,
            row.target_revenue,
        )
        return {
            "week": row.week,
            "as_of": row.as_of,
            "accounts_covered": covered,
            "conversions": conversions,
            "sourced_revenue": revenue,
            "revenue_target": revenue_target,
            "accounts_covered_share": programme.attainment(covered, target.accounts_covered),
            "conversions_share": programme.attainment(conversions, target.conversions),
            "revenue_share": programme.attainment(
                None if revenue is None else float(revenue),
                None if revenue_target is None else float(revenue_target),
            ),
        }


class TargetInputSerializer(serializers.Serializer[object]):
    year = serializers.IntegerField(min_value=2000, max_value=2199)
    partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.none(), required=False, allow_null=True, default=None
    )
    rep = serializers.PrimaryKeyRelatedField(
        queryset=SalesRep.objects.none(), required=False, allow_null=True, default=None
    )
    accounts_covered = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    conversions = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    revenue = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )

    def __init__(self, *args: Any, request: Request | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if request is None:
            return  # the schema's instance: it chooses nothing
        cast(
            "serializers.PrimaryKeyRelatedField[Partner]", self.fields["partner"]
        ).queryset = partners_visible_to(request.user)
        cast(
            "serializers.PrimaryKeyRelatedField[SalesRep]", self.fields["rep"]
        ).queryset = reps_visible_to(request.user)


class TargetFilter(django_filters.FilterSet):
    year = django_filters.NumberFilter()
    partner = django_filters.CharFilter(method="of_partner", help_text="A partner id.")
    rep = django_filters.NumberFilter(field_name="rep_id")

    class Meta:
        model = Target
        fields = ["year", "partner", "rep"]

    def of_partner(self, queryset: QuerySet[Target], name: str, value: str) -> QuerySet[Target]:
        partner_id = object_id(value)
        return queryset.filter(partner_id=partner_id) if partner_id else queryset.none()


@extend_schema_view(
    create=extend_schema(request=TargetInputSerializer, responses={201: TargetSerializer}),
)
class TargetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Target],
):
    """Yearly targets of partners and reps, each with its attainment in the latest weekly
    snapshot of its year. A POST sets the target of one partner or one rep for a year
    (replacing it); sales managers write. Partner users read their own organisation's."""

    serializer_class = TargetSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = TargetFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Target]:
        return targets_visible_to(self.request.user).order_by("-year", "id")

    def _context(self, targets: list[Target]) -> dict[str, Any]:
        figures: OwnerFigures = {}
        for year in {target.year for target in targets}:
            week = _year_week(year)
            if week is None:
                continue
            partner_ids = [t.partner_id for t in targets if t.year == year and t.partner_id]
            rep_ids = [t.rep_id for t in targets if t.year == year and t.rep_id]
            for row in reports.programme_partners(week, partner_ids=partner_ids):
                figures[("partner", row.partner_id)] = row
            for rep_row in reports.rep_programme(week, rep_ids=rep_ids):
                figures[("rep", rep_row.rep_id)] = rep_row
        return {**self.get_serializer_context(), "attainment": figures}

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        targets = list(page) if page is not None else []
        data = TargetSerializer(targets, many=True, context=self._context(targets)).data
        return self.get_paginated_response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target = self.get_object()
        return Response(TargetSerializer(target, context=self._context([target])).data)

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TargetInputSerializer(data=request.data, request=request)
        data.is_valid(raise_exception=True)
        target = target_set(**data.validated_data)
        return Response(
            TargetSerializer(target, context=self._context([target])).data,
            status=status.HTTP_201_CREATED,
        )

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        target_delete(target=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ScorecardView(APIView):
    """A partner's scorecard from the weekly snapshots: coverage, conversions, registrations
    and win rate, satisfaction and NPS, tier, the requirements of its tier and the distance to
    the next one requirement by requirement, its yearly target's attainment and a 12-week
    trend. A partner user gets its own (no parameter); internal users name the partner."""

    permission_classes = [InternalAndPartnerReadManagerWrite]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "partner", OpenApiTypes.INT, description="Internal users: the partner's id."
            ),
            OpenApiParameter("week", OpenApiTypes.STR, description="The latest week up to this."),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        if role_of(request.user) == Role.PARTNER_USER:
            partner = partner_of_user(request.user)
        else:
            partner_id = object_id(request.query_params.get("partner", ""))
            if partner_id is None:
                raise ValidationError({"partner": ["Name the partner by its id."]})
            partner = partners_visible_to(request.user).filter(pk=partner_id).first()
        if partner is None:
            raise NotFound()
        week = request.query_params.get("week") or None
        if week is not None:
            try:
                metrics.iso_week_as_of(week)
            except ValueError as error:
                raise ValidationError({"week": [str(error)]}) from error
        card = scorecard_for(partner.pk, until_week=week)
        if card is None:
            raise NotFound("No weekly figures of this partner yet.")
        return Response({"partner": partner.pk, "name": partner.name, **scorecard_payload(card)})


class DriversView(APIView):
    """What drives satisfaction: the week's ordinary least-squares regression of partner
    satisfaction on its explanatory variables, each coefficient with its 95 % interval and its
    effect for one standard deviation, ranked by the size of the effect, with n and R²;
    `status` "too_little_data" (and no coefficient) when there are too few partners."""

    permission_classes = [LeadershipOnly]

    @extend_schema(
        parameters=[OpenApiParameter("week", OpenApiTypes.STR, description="Default: the newest.")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request: Request) -> Response:
        week = request.query_params.get("week") or None
        if week is not None:
            try:
                metrics.iso_week_as_of(week)
            except ValueError as error:
                raise ValidationError({"week": [str(error)]}) from error
        fit = reports.satisfaction_drivers(week)
        if fit is None:
            raise NotFound("No regression for this week; it is fitted with the weekly figures.")
        section = drivers_section(fit.week, fit)
        return Response({key: value for key, value in section.items() if key != "chart"})
