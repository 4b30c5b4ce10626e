"""Deal registrations over the API: /api/v1/deal-registrations/ and its actions.

The same selectors and services as the portal and the workspace: a partner user's token
reaches only its own organisation's registrations (anything else is 404), partner users
register, withdraw and ask for an extension; sales managers approve, reject, record won or lost
and extend. A change the registration's state or the one-approval rule refuses answers 409 with
a `detail` naming the conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.permissions import InternalAndPartnerReadManagerWrite
from crm.idempotency import once_per_idempotency_key
from crm.roles import Role, can_manage, is_partner_user, signed_in_user
from partners.api.registration_serializers import (
    ApproveInputSerializer,
    ConflictSerializer,
    DealRegistrationInputSerializer,
    DealRegistrationSerializer,
    ExtendInputSerializer,
    ReasonInputSerializer,
    RejectInputSerializer,
    WonInputSerializer,
)
from partners.filters import DealRegistrationFilter
from partners.registration_models import DealRegistration
from partners.registration_selectors import registrations_visible_to
from partners.registration_services import (
    RegistrationRefused,
    registration_approve,
    registration_extend,
    registration_mark_lost,
    registration_mark_won,
    registration_reject,
    registration_request_extension,
    registration_submit,
    registration_withdraw,
)


class RegistrationConflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The registration's state refuses this change."
    default_code = "conflict"

    def __init__(self, refusal: RegistrationRefused) -> None:
        code = refusal.code or "conflict"
        message = " ".join(refusal.messages)
        super().__init__(detail={"detail": f"{code}: {message}", "conflict": code})


def _refusals_as_conflicts(change: Callable[[], DealRegistration]) -> DealRegistration:
    try:
        return change()
    except RegistrationRefused as refusal:
        raise RegistrationConflict(refusal) from None


ACTION_RESPONSES = {
    200: DealRegistrationSerializer,
    400: OpenApiResponse(description="Bad input, by field."),
    403: OpenApiResponse(description="The caller's role may not take this action."),
    404: OpenApiResponse(description="No such registration for the caller."),
    409: ConflictSerializer,
}


@extend_schema_view(
    create=extend_schema(
        request=DealRegistrationInputSerializer,
        responses={201: DealRegistrationSerializer, 403: OpenApiResponse()},
        summary="Register a deal (partner users)",
        description="Matched to an account and checked for conflicts as it arrives; approved "
        "at once when the partner's tier approves clean registrations automatically.",
    ),
)
class DealRegistrationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[DealRegistration],
):
    """Deal registrations. Partner users see and register their own organisation's; internal
    users list all they may see, with the matched account and the conflicts."""

    serializer_class = DealRegistrationSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    extra_writers = frozenset({Role.PARTNER_USER})
    filterset_class = DealRegistrationFilter
    search_fields = ["company_name", "external_id"]
    ordering_fields = ["submitted_at", "updated_at", "protected_until", "company_name"]
    ordering = ["-submitted_at", "-id"]

    def get_queryset(self) -> QuerySet[DealRegistration]:
        return registrations_visible_to(self.request.user).select_related(
            "region", "vertical", "account"
        )

    def _fresh(self, registration: DealRegistration) -> Response:
        """The registration as read again (with its region, vertical and account)."""
        return Response(self.get_serializer(self.get_queryset().get(pk=registration.pk)).data)

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not is_partner_user(request.user):
            raise exceptions.PermissionDenied(
                "Partner users register deals, for their own organisation."
            )
        data = DealRegistrationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        registration = registration_submit(
            user=signed_in_user(request.user), details=data.details()
        )
        # Its region, vertical and account were read while it was made: no need to read again.
        return Response(self.get_serializer(registration).data, status=status.HTTP_201_CREATED)

    def _managed(self) -> DealRegistration:
        registration: DealRegistration = self.get_object()  # first: another partner's is a 404
        if not can_manage(self.request.user):
            raise exceptions.PermissionDenied("Sales managers decide registrations.")
        return registration

    @extend_schema(
        request=ApproveInputSerializer, responses=ACTION_RESPONSES, summary="Approve (managers)"
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def approve(self, request: Request, pk: str | None = None) -> Response:
        registration = self._managed()
        data = ApproveInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        approved = _refusals_as_conflicts(
            lambda: registration_approve(
                registration=registration,
                by=signed_in_user(request.user),
                protected_days=data.validated_data.get("protected_days"),
                reason=data.validated_data["reason"],
            )
        )
        return self._fresh(approved)

    @extend_schema(
        request=RejectInputSerializer, responses=ACTION_RESPONSES, summary="Reject (managers)"
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def reject(self, request: Request, pk: str | None = None) -> Response:
        registration = self._managed()
        data = RejectInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rejected = _refusals_as_conflicts(
            lambda: registration_reject(
                registration=registration,
                by=signed_in_user(request.user),
                reason=data.validated_data["reason"],
            )
        )
        return self._fresh(rejected)

    @extend_schema(
        request=WonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Record the deal won (managers); converts the account",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def won(self, request: Request, pk: str | None = None) -> Response:
        registration = self._managed()
        data = WonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        won = _refusals_as_conflicts(
            lambda: registration_mark_won(
                registration=registration,
                by=signed_in_user(request.user),
                amount=data.validated_data["amount"],
                closed_on=data.validated_data["closed_on"],
            )
        )
        return self._fresh(won)

    @extend_schema(
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Record the deal lost (managers); its coverage ends",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def lost(self, request: Request, pk: str | None = None) -> Response:
        registration = self._managed()
        data = ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lost = _refusals_as_conflicts(
            lambda: registration_mark_lost(
                registration=registration,
                by=signed_in_user(request.user),
                reason=data.validated_data["reason"],
            )
        )
        return self._fresh(lost)

    @extend_schema(
        request=ReasonInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Withdraw (the registering partner's users)",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def withdraw(self, request: Request, pk: str | None = None) -> Response:
        registration = self.get_object()
        if not is_partner_user(request.user):
            raise exceptions.PermissionDenied("The registering partner withdraws its deals.")
        data = ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        withdrawn = _refusals_as_conflicts(
            lambda: registration_withdraw(
                registration=registration,
                user=signed_in_user(request.user),
                reason=data.validated_data["reason"],
            )
        )
        return self._fresh(withdrawn)

    @extend_schema(
        request=ExtendInputSerializer,
        responses=ACTION_RESPONSES,
        summary="Extend the protection once",
        description="A partner user asks for the extension (`note`); a sales manager grants "
        "it (`days`, default the partner tier's extension), asked or not. Once only.",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def extend(self, request: Request, pk: str | None = None) -> Response:
        registration = self.get_object()
        data = ExtendInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if is_partner_user(request.user):
            extended = _refusals_as_conflicts(
                lambda: registration_request_extension(
                    registration=registration,
                    user=signed_in_user(request.user),
                    note=data.validated_data["note"],
                )
            )
        elif can_manage(request.user):
            extended = _refusals_as_conflicts(
                lambda: registration_extend(
                    registration=registration,
                    by=signed_in_user(request.user),
                    days=data.validated_data.get("days"),
                )
            )
        else:
            raise exceptions.PermissionDenied()
        return self._fresh(extended)
