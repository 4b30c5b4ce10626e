"""Coverage assignments (read; sales managers assign and end). They live with the partners
because an assignment may name a partner, chosen among those the asking user may see."""

from __future__ import annotations

from datetime import date

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from channels.models import CoverageAssignment
from channels.selectors import (
    active_coverage_q,
    coverage_visible_to,
    internal_accounts_visible_to,
    reps_visible_to,
)
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.api.pagination import IdCursorPagination
from crm.api.permissions import InternalReadManagerWrite
from crm.idempotency import once_per_idempotency_key
from crm.models import ChannelKind
from partners.api.coverage_serializers import (
    CoverageAssignInputSerializer,
    CoverageAssignmentSerializer,
    CoverageEndInputSerializer,
    CoverageResultSerializer,
)
from partners.selectors import partners_visible_to


class CoverageFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices)
    active_on = django_filters.DateFilter(
        method="filter_active_on", label="Only coverage active on this day."
    )

    class Meta:
        model = CoverageAssignment
        fields = ["account", "kind", "rep", "partner", "online_source"]

    def filter_active_on(
        self, queryset: QuerySet[CoverageAssignment], name: str, value: date
    ) -> QuerySet[CoverageAssignment]:
        return queryset.filter(active_coverage_q(value))


class CoverageAssignmentViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet[CoverageAssignment]
):
    """Coverage: who works which account from when to when. Cursor-paginated by id."""

    serializer_class = CoverageAssignmentSerializer
    permission_classes = [InternalReadManagerWrite]
    pagination_class = IdCursorPagination
    filterset_class = CoverageFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[CoverageAssignment]:
        return coverage_visible_to(self.request.user).select_related("rep", "partner")

    @extend_schema(
        request=CoverageAssignInputSerializer,
        responses={201: CoverageResultSerializer},
        summary="Assign accounts to a channel owner",
        description=(
            "Sales managers only. Accounts the owner already covers from `start_date` are "
            "counted in `already_covered`, not assigned twice; a refusal saves nothing."
        ),
    )
    @once_per_idempotency_key
    def create(self, request: Request) -> Response:
        accounts = internal_accounts_visible_to(request.user)
        data = CoverageAssignInputSerializer(
            data=request.data,
            accounts=accounts,
            reps=reps_visible_to(request.user),
            partners=partners_visible_to(request.user),
        )
        data.is_valid(raise_exception=True)
        values = data.validated_data
        owner = CoverageOwner(
            kind=values["kind"],
            rep=values.get("rep"),
            partner=values.get("partner"),
            online_source=values.get("online_source", ""),
        )
        result = coverage_assign(
            accounts=accounts.filter(pk__in=[account.pk for account in values["accounts"]]),
            owner=owner,
            start_date=values["start_date"],
            end_date=values.get("end_date"),
        )
        return Response(
            CoverageResultSerializer(
                {"created": result.created, "already_covered": result.already_covered}
            ).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        request=CoverageEndInputSerializer,
        responses={200: CoverageAssignmentSerializer},
        summary="End this coverage on a day",
        description=(
            "Sales managers only. `end_date` is the last day of coverage. Coverage that already "
            "ends on or before that day is left as it is; the answer shows its end."
        ),
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def end(self, request: Request, pk: str | None = None) -> Response:
        assignment = self.get_object()
        data = CoverageEndInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        coverage_end(
            assignments=CoverageAssignment.objects.filter(pk=assignment.pk),
            end_date=data.validated_data["end_date"],
        )
        assignment.refresh_from_db()
        return Response(CoverageAssignmentSerializer(assignment).data)
