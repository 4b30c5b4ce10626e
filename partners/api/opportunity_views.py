"""Opportunities over the API: /api/v1/opportunities/.

The same selector as the pages (`partners.selectors.opportunities_visible_to`): a partner
user's token reaches its own organisation's deals only (anything else is 404), a rep the deals
they own or whose accounts they work. Sales managers open deals, once per Idempotency-Key; bad
input is a 400 naming the fields.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import filters, mixins, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from channels.models import Opportunity
from channels.selectors import reps_visible_to
from crm.api.ordering import ListOrdering
from crm.api.permissions import InternalAndPartnerReadManagerWrite
from crm.idempotency import once_per_idempotency_key
from crm.roles import signed_in_user
from partners.api.opportunity_serializers import OpportunityInputSerializer, OpportunitySerializer
from partners.filters import OpportunityFilter
from partners.opportunity_services import OpportunityOwner, opportunity_create
from partners.selectors import accounts_visible_to, opportunities_visible_to, partners_visible_to


class OpportunityViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Opportunity],
):
    """Opportunities of every channel. Partner users read their own organisation's."""

    serializer_class = OpportunitySerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = OpportunityFilter
    filter_backends = [
        django_filters.rest_framework.DjangoFilterBackend,
        filters.SearchFilter,
        ListOrdering,
    ]
    search_fields = ["name", "external_id", "account__name"]
    ordering_fields = ["opened_on", "expected_close_on", "closed_on", "amount", "updated_at"]
    ordering = ["-opened_on", "-id"]

    def get_queryset(self) -> QuerySet[Opportunity]:
        return opportunities_visible_to(self.request.user).select_related(
            "account", "rep", "partner", "sub_stage", "registration"
        )

    @extend_schema(
        request=OpportunityInputSerializer,
        responses={
            201: OpportunitySerializer,
            400: OpenApiResponse(description="Bad input, by field."),
        },
        summary="Open a deal (sales managers)",
        description="A currency needs a rate valid on `opened_on`; the answer names the field.",
    )
    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = signed_in_user(request.user)
        data = OpportunityInputSerializer(
            data=request.data,
            accounts=accounts_visible_to(user),
            reps=reps_visible_to(user),
            partners=partners_visible_to(user),
        )
        data.is_valid(raise_exception=True)
        values = data.validated_data
        deal = opportunity_create(
            account=values["account"],
            owner=OpportunityOwner(
                channel=values["channel"],
                rep=values.get("rep"),
                partner=values.get("partner"),
                online_source=values["online_source"],
            ),
            name=values["name"],
            amount=values["amount"],
            currency=values["currency"].upper(),
            recurring=values["recurring"],
            opened_on=values["opened_on"],
            expected_close_on=values.get("expected_close_on"),
            sub_stage=values.get("sub_stage"),
            by=user,
        )
        fresh = self.get_queryset().get(pk=deal.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)
