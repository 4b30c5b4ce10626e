"""The partner programme over the API: tiers, tier history, certifications, surveys, their
waves with response rates, and survey answers. Every list comes from the programme's selectors,
so a partner user sees the programme's tiers and its own organisation's rows only."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.permissions import InternalAndPartnerReadManagerWrite, InternalReadManagerWrite
from crm.idempotency import once_per_idempotency_key
from crm.roles import signed_in_user
from partners.api.programme_serializers import (
    CertificationInputSerializer,
    CertificationSerializer,
    SurveyInputSerializer,
    SurveyResponseSerializer,
    SurveySerializer,
    SurveyWaveSerializer,
    TierChangeSerializer,
    TierInputSerializer,
    TierSerializer,
)
from partners.filters import OfPartnerFilterSet
from partners.programme_models import (
    Certification,
    Survey,
    SurveyResponse,
    SurveyWave,
    Tier,
    TierChange,
    TierChangeSource,
)
from partners.programme_selectors import (
    certifications_visible_to,
    survey_responses_visible_to,
    survey_waves_visible_to,
    surveys_visible_to,
    tier_changes_visible_to,
    tiers_visible_to,
    wave_response_rates,
)
from partners.programme_services import (
    TierValues,
    certification_add,
    certification_remove,
    tier_create,
    tier_delete,
    tier_update,
)
from partners.selectors import partners_visible_to
from partners.survey_services import SurveyValues, survey_create, survey_update


@extend_schema_view(
    create=extend_schema(request=TierInputSerializer, responses={201: TierSerializer}),
    update=extend_schema(request=TierInputSerializer, responses={200: TierSerializer}),
)
class TierViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Tier],
):
    """The programme's tiers, lowest rank first, with their requirements and benefits (every
    user, partner users included, reads them); sales managers add, change and remove them."""

    serializer_class = TierSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filter_backends: list[type[BaseFilterBackend]] = []
    pagination_class = None
    http_method_names = ["get", "post", "put", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Tier]:
        return tiers_visible_to(self.request.user).order_by("rank")

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TierInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tier = tier_create(values=TierValues(**data.validated_data))
        return Response(self.get_serializer(tier).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        tier = self.get_object()
        data = TierInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tier = tier_update(tier=tier, values=TierValues(**data.validated_data))
        return Response(self.get_serializer(tier).data)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        tier_delete(tier=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class TierChangeFilter(OfPartnerFilterSet):
    week = django_filters.CharFilter(help_text='An ISO week, e.g. "2026-W46".')
    source = django_filters.ChoiceFilter(choices=TierChangeSource.choices)
    tier = django_filters.CharFilter(field_name="to_tier", help_text="The tier moved into.")

    class Meta:
        model = TierChange
        fields = ["partner", "week", "source", "tier"]


class TierChangeViewSet(viewsets.ReadOnlyModelViewSet[TierChange]):
    """Every tier change, newest week first: by the weekly evaluation, with the week and the
    figures that caused it (`evidence`: the figures, and each requirement of the tier judged
    with its minimum, the figure and whether it was met), or by a manager. Partner users see
    their own organisation's."""

    serializer_class = TierChangeSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = TierChangeFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[TierChange]:
        return (
            tier_changes_visible_to(self.request.user)
            .select_related("changed_by")
            .order_by("-week", "-created_at", "-id")
        )


class CertificationFilter(OfPartnerFilterSet):
    class Meta:
        model = Certification
        fields = ["partner"]


@extend_schema_view(
    create=extend_schema(
        request=CertificationInputSerializer, responses={201: CertificationSerializer}
    ),
)
class CertificationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Certification],
):
    """Certifications partners hold (counted by the programme while valid); managers record
    and remove them, partner users read their own."""

    serializer_class = CertificationSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = CertificationFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Certification]:
        return certifications_visible_to(self.request.user).order_by("-earned_on", "id")

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = CertificationInputSerializer(
            data=request.data, partners=partners_visible_to(request.user)
        )
        data.is_valid(raise_exception=True)
        certification = certification_add(**data.validated_data)
        return Response(self.get_serializer(certification).data, status=status.HTTP_201_CREATED)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        certification_remove(certification=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    create=extend_schema(request=SurveyInputSerializer, responses={201: SurveySerializer}),
    update=extend_schema(request=SurveyInputSerializer, responses={200: SurveySerializer}),
)
class SurveyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Survey],
):
    """Scheduled surveys (internal users read; sales managers define them). Waves are sent by
    the daily job on each survey's schedule."""

    serializer_class = SurveySerializer
    permission_classes = [InternalReadManagerWrite]
    filter_backends: list[type[BaseFilterBackend]] = []
    http_method_names = ["get", "post", "put", "head", "options"]

    def get_queryset(self) -> QuerySet[Survey]:
        return surveys_visible_to(self.request.user).order_by("name", "id")

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = SurveyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = survey_create(
            values=SurveyValues(**data.validated_data), by=signed_in_user(request.user)
        )
        return Response(self.get_serializer(survey).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        survey = self.get_object()
        data = SurveyInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        survey = survey_update(survey=survey, values=SurveyValues(**data.validated_data))
        return Response(self.get_serializer(survey).data)


class SurveyWaveFilter(django_filters.FilterSet):
    class Meta:
        model = SurveyWave
        fields = ["survey"]


class SurveyWaveViewSet(viewsets.ReadOnlyModelViewSet[SurveyWave]):
    """The waves sent, newest first, with their response rates per channel kind of the partner
    and over all ("" kind): contacts invited and answering, partners invited and answering."""

    serializer_class = SurveyWaveSerializer
    permission_classes = [InternalReadManagerWrite]
    filterset_class = SurveyWaveFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[SurveyWave]:
        return survey_waves_visible_to(self.request.user).order_by("-opens_on", "-id")

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        waves = list(page) if page is not None else []
        rates = wave_response_rates([wave.pk for wave in waves])
        context = {**self.get_serializer_context(), "rates": rates}
        data = SurveyWaveSerializer(waves, many=True, context=context).data
        return self.get_paginated_response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        wave = self.get_object()
        context = {**self.get_serializer_context(), "rates": wave_response_rates([wave.pk])}
        return Response(SurveyWaveSerializer(wave, context=context).data)


class SurveyResponseFilter(OfPartnerFilterSet):
    wave = django_filters.NumberFilter(field_name="invitation__wave_id")

    class Meta:
        model = SurveyResponse
        fields = ["partner", "wave"]


class SurveyResponseViewSet(viewsets.ReadOnlyModelViewSet[SurveyResponse]):
    """Survey answers, newest first, with the scores per category, the NPS score, the comment
    and the feedback entries they became; partner users see their own organisation's."""

    serializer_class = SurveyResponseSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = SurveyResponseFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[SurveyResponse]:
        return (
            survey_responses_visible_to(self.request.user)
            .select_related("invitation")
            .prefetch_related("feedback")
            .order_by("-created_at", "-id")
        )
