"""Partners, contacts, accounts, agreements and feedback over the API.

Every queryset comes from the same selectors as the HTML views and the portal, so a partner
user's token reaches only their own organisation (anything else is 404); every write calls the
same service as the web app, and a service's ValidationError becomes a 400 with its field keys
(crm.api.errors).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, QuerySet
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import filters, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from crm.api.pagination import IdCursorPagination
from crm.api.permissions import (
    InternalAndPartnerReadManagerWrite,
    InternalReadManagerWrite,
)
from crm.api.serializers import AccountSerializer
from crm.columns import ACCOUNT_CODES, ACCOUNT_COLUMNS
from crm.idempotency import once_per_idempotency_key
from crm.models import Account, Region, Vertical
from crm.roles import Role, can_manage, is_internal, is_partner_user, signed_in_user
from partners.api.serializers import (
    AgreementActivateInputSerializer,
    AgreementDraftInputSerializer,
    AgreementSerializer,
    AgreementTerminateInputSerializer,
    AgreementTermsInputSerializer,
    FeedbackInputSerializer,
    FeedbackMessageSerializer,
    FeedbackNoteSerializer,
    FeedbackReplySerializer,
    FeedbackSerializer,
    FeedbackTriageInputSerializer,
    PartnerContactInputSerializer,
    PartnerContactSerializer,
    PartnerInputSerializer,
    PartnerSerializer,
)
from partners.downloads import attachment_response, signed_document_response
from partners.filters import (
    AccountListFilterSet,
    AgreementFilter,
    FeedbackFilter,
    PartnerFilter,
)
from partners.models import (
    Agreement,
    Feedback,
    Partner,
    PartnerContact,
)
from partners.selectors import (
    accounts_visible_to,
    agreements_visible_to,
    feedback_visible_to,
    partners_visible_to,
)
from partners.services import (
    AgreementTerms,
    FeedbackEntry,
    PartnerProfile,
    agreement_activate,
    agreement_create_draft,
    agreement_renew,
    agreement_terminate,
    agreement_update_draft,
    feedback_follow_up,
    feedback_log_for_partner,
    feedback_note_add,
    feedback_reply,
    feedback_submit,
    feedback_triage,
    partner_contact_add,
    partner_create,
    partner_update,
)

# Partners ---------------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(request=PartnerInputSerializer, responses={201: PartnerSerializer}),
    update=extend_schema(request=PartnerInputSerializer, responses={200: PartnerSerializer}),
)
class PartnerViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Partner],
):
    """Partners and distributors (the same model; filter by `channel_kind`). Partner users see
    only their own organisation."""

    serializer_class = PartnerSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = PartnerFilter
    search_fields = ["name", "external_id"]
    ordering_fields = ["name", "external_id", "tier", "created_at"]
    ordering = ["name"]
    http_method_names = ["get", "post", "put", "head", "options"]

    def get_queryset(self) -> QuerySet[Partner]:
        return partners_visible_to(self.request.user)

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = PartnerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        partner = partner_create(profile=PartnerProfile(**data.validated_data))
        return Response(self.get_serializer(partner).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partner = self.get_object()
        data = PartnerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        partner = partner_update(
            partner=partner,
            profile=PartnerProfile(**data.validated_data),
            by=signed_in_user(request.user),
        )
        return Response(self.get_serializer(partner).data)


class PartnerContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[PartnerContact],
):
    """Contacts at partners (internal users)."""

    serializer_class = PartnerContactSerializer
    permission_classes = [InternalReadManagerWrite]
    filterset_fields = ["partner", "is_primary"]
    search_fields = ["name", "email"]
    ordering_fields = ["name", "partner"]
    ordering = ["partner", "-is_primary", "name"]

    def get_queryset(self) -> QuerySet[PartnerContact]:
        return PartnerContact.objects.filter(partner__in=partners_visible_to(self.request.user))

    @extend_schema(request=PartnerContactInputSerializer, responses={201: PartnerContactSerializer})
    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = PartnerContactInputSerializer(
            data=request.data, partners=partners_visible_to(request.user)
        )
        data.is_valid(raise_exception=True)
        contact = partner_contact_add(**data.validated_data)
        return Response(self.get_serializer(contact).data, status=status.HTTP_201_CREATED)


# Accounts ---------------------------------------------------------------------------------------


class AccountViewSet(viewsets.ReadOnlyModelViewSet[Account]):
    """Accounts in the market: all for managers and executives, a rep's own, a partner user's
    assigned ones. Cursor-paginated in the order `sort` asks (the account page's orders), by
    id without it; the older `ordering` (id or external_id) still works when `sort` is absent."""

    serializer_class = AccountSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    pagination_class = IdCursorPagination
    filterset_class = AccountListFilterSet
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend, filters.OrderingFilter]
    ordering_fields = ["id", "external_id"]
    ordering = ["id"]

    def get_queryset(self) -> QuerySet[Account]:
        # The columns the serializer writes only (region and vertical by code): the rest of
        # each row, time stamps and all, would be built for every account of every page.
        return (
            accounts_visible_to(self.request.user)
            .select_related("region", "vertical")
            .only("id", *ACCOUNT_COLUMNS, *ACCOUNT_CODES.values())
        )


# Agreements -------------------------------------------------------------------------------------


class FileDownloadNegotiation(BaseContentNegotiation):
    """A download answers with its file whatever the client accepts (no 406 for `Accept:
    application/pdf` or `image/png`); its refusals use the first renderer, JSON, like every
    other error."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = next(iter(renderers))
        return first, first.media_type


def _terms(values: dict[str, Any]) -> AgreementTerms:
    return AgreementTerms(
        **{name: value for name, value in values.items() if name != "partner"},
    )


@extend_schema_view(
    create=extend_schema(
        request=AgreementDraftInputSerializer,
        responses={201: AgreementSerializer},
        summary="Draft an agreement",
    ),
    update=extend_schema(
        request=AgreementTermsInputSerializer,
        responses={200: AgreementSerializer},
        summary="Change a draft's terms",
    ),
)
class AgreementViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet[Agreement],
):
    """Agreements; partner users see their own, never drafts, and download their signed PDFs.
    Sales managers draft, edit drafts, activate, renew and terminate, through the same services
    as the web app."""

    serializer_class = AgreementSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    filterset_class = AgreementFilter
    search_fields = ["external_id", "partner__name"]
    ordering_fields = ["start_date", "end_date", "external_id", "status"]
    ordering = ["-start_date", "id"]
    http_method_names = ["get", "post", "put", "head", "options"]

    def get_queryset(self) -> QuerySet[Agreement]:
        return agreements_visible_to(self.request.user).prefetch_related(
            Prefetch("regions", Region.objects.only("id", "code"), to_attr="regions_codes"),
            Prefetch("verticals", Vertical.objects.only("id", "code"), to_attr="verticals_codes"),
        )

    def _fresh(self, agreement: Agreement) -> dict[str, Any]:
        fresh: dict[str, Any] = self.get_serializer(self.get_queryset().get(pk=agreement.pk)).data
        return fresh

    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = AgreementDraftInputSerializer(
            data=request.data, partners=partners_visible_to(request.user)
        )
        data.is_valid(raise_exception=True)
        agreement = agreement_create_draft(
            partner=data.validated_data["partner"],
            terms=_terms(data.validated_data),
            by=signed_in_user(request.user),
        )
        return Response(self._fresh(agreement), status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        agreement = self.get_object()
        data = AgreementTermsInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agreement = agreement_update_draft(
            agreement=agreement, terms=_terms(data.validated_data), by=signed_in_user(request.user)
        )
        return Response(self._fresh(agreement))

    @extend_schema(
        request={"multipart/form-data": AgreementActivateInputSerializer},
        responses={200: AgreementSerializer},
        summary="Sign a draft: the signed date and the signed PDF",
    )
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    @once_per_idempotency_key
    def activate(self, request: Request, pk: str | None = None) -> Response:
        agreement = self.get_object()
        data = AgreementActivateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agreement = agreement_activate(
            agreement=agreement,
            signed_on=data.validated_data["signed_on"],
            signed_document=data.validated_data["signed_document"],
            by=signed_in_user(request.user),
        )
        return Response(self._fresh(agreement))

    @extend_schema(
        request=None,
        responses={201: AgreementSerializer},
        summary="Create the renewal draft of an agreement",
    )
    @action(detail=True, methods=["post"], parser_classes=[JSONParser, FormParser])
    @once_per_idempotency_key
    def renew(self, request: Request, pk: str | None = None) -> Response:
        renewal = agreement_renew(agreement=self.get_object(), by=signed_in_user(request.user))
        return Response(self._fresh(renewal), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=AgreementTerminateInputSerializer,
        responses={200: AgreementSerializer},
        summary="End an active agreement early",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def terminate(self, request: Request, pk: str | None = None) -> Response:
        agreement = self.get_object()
        data = AgreementTerminateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        agreement = agreement_terminate(
            agreement=agreement,
            terminated_on=data.validated_data["terminated_on"],
            reason=data.validated_data["reason"],
            by=signed_in_user(request.user),
        )
        return Response(self._fresh(agreement))

    @extend_schema(
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The signed PDF, as an attachment."
            ),
            404: OpenApiResponse(
                description="No such agreement for the caller, or it has no signed document."
            ),
        },
        summary="Download the signed PDF",
        description=(
            "The file behind the workspace and portal downloads: internal users get any "
            "agreement they may see, partner users their own (never drafts)."
        ),
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileDownloadNegotiation)
    def document(self, request: Request, pk: str | None = None) -> FileResponse:
        # The same selector as the workspace and portal downloads decides who may see it.
        agreement = self.get_object()
        if not agreement.signed_document:
            raise NotFound("This agreement has no signed document.")
        return signed_document_response(agreement)


# Feedback ---------------------------------------------------------------------------------------


class FeedbackViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet[Feedback],
):
    """Partner feedback. Partner users submit and follow up on their own and download their
    attachments; sales managers log it on a partner's behalf, reply, triage and keep internal
    notes (never shown to partners)."""

    serializer_class = FeedbackSerializer
    permission_classes = [InternalAndPartnerReadManagerWrite]
    extra_writers = frozenset({Role.PARTNER_USER})
    filterset_class = FeedbackFilter
    search_fields = ["subject"]
    ordering_fields = ["created_at", "satisfaction", "status"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self) -> QuerySet[Feedback]:
        return feedback_visible_to(self.request.user)

    @extend_schema(request=FeedbackInputSerializer, responses={201: FeedbackSerializer})
    @once_per_idempotency_key
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        partners = partners_visible_to(request.user)
        data = FeedbackInputSerializer(data=request.data, partners=partners)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        partner = values.pop("partner", None)
        attachment = values.pop("attachment", None)
        entry = FeedbackEntry(**values)
        if is_partner_user(request.user):
            if partner is not None:
                raise ValidationError(
                    {"partner": ["Partner users submit feedback for their own organisation."]}
                )
            feedback = feedback_submit(
                user=signed_in_user(request.user), entry=entry, attachment=attachment
            )
        else:
            if partner is None:
                raise ValidationError({"partner": ["Name the partner the feedback came from."]})
            if attachment is not None:
                raise ValidationError({"attachment": ["Attachments come from partner users."]})
            feedback = feedback_log_for_partner(
                partner=partner, entry=entry, by=signed_in_user(request.user)
            )
        return Response(self.get_serializer(feedback).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["get"], responses={200: FeedbackReplySerializer(many=True)})
    @extend_schema(
        methods=["post"],
        request=FeedbackMessageSerializer,
        responses={201: FeedbackReplySerializer},
        summary="Reply (sales managers) or follow up (the partner's users)",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    @once_per_idempotency_key
    def replies(self, request: Request, pk: str | None = None) -> Response:
        feedback = self.get_object()
        if request.method == "GET":
            replies = feedback.replies.select_related("author").order_by("created_at", "id")
            return Response(FeedbackReplySerializer(replies, many=True).data)
        data = FeedbackMessageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        body = data.validated_data["body"]
        if is_partner_user(request.user):
            reply = feedback_follow_up(
                feedback=feedback, user=signed_in_user(request.user), body=body
            )
        else:
            reply = feedback_reply(
                feedback=feedback, author=signed_in_user(request.user), body=body
            )
        return Response(FeedbackReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        methods=["get"],
        responses={200: FeedbackNoteSerializer(many=True), 404: OpenApiResponse()},
    )
    @extend_schema(
        methods=["post"],
        request=FeedbackMessageSerializer,
        responses={201: FeedbackNoteSerializer},
        summary="Add an internal note (never shown to partner users)",
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    @once_per_idempotency_key
    def notes(self, request: Request, pk: str | None = None) -> Response:
        if not is_internal(request.user):
            raise NotFound()
        feedback = self.get_object()
        if request.method == "GET":
            notes = feedback.internal_notes.select_related("author").order_by("created_at", "id")
            return Response(FeedbackNoteSerializer(notes, many=True).data)
        if not can_manage(request.user):
            raise PermissionDenied()
        data = FeedbackMessageSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        note = feedback_note_add(
            feedback=feedback, author=signed_in_user(request.user), body=data.validated_data["body"]
        )
        return Response(FeedbackNoteSerializer(note).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=FeedbackTriageInputSerializer,
        responses={200: FeedbackSerializer},
        summary="Set the status and the internal assignee",
    )
    @action(detail=True, methods=["post"])
    @once_per_idempotency_key
    def triage(self, request: Request, pk: str | None = None) -> Response:
        feedback = self.get_object()  # first, so another partner's feedback is a 404
        if not can_manage(request.user):
            raise PermissionDenied()
        data = FeedbackTriageInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignee = None
        if data.validated_data.get("assignee") is not None:
            assignee = (
                get_user_model()
                .objects.filter(pk=data.validated_data["assignee"], is_active=True)
                .first()
            )
            if assignee is None:
                raise ValidationError({"assignee": ["No such colleague."]})
        feedback = feedback_triage(
            feedback=feedback,
            status=data.validated_data["status"],
            assignee=assignee,
            by=signed_in_user(request.user),
        )
        return Response(self.get_serializer(feedback).data)

    @extend_schema(
        responses={
            **{
                (200, media_type): OpenApiResponse(
                    OpenApiTypes.BINARY, description="The PDF, PNG or JPEG, as an attachment."
                )
                for media_type in ("application/pdf", "image/png", "image/jpeg")
            },
            404: OpenApiResponse(
                description="Not a partner user, no such feedback for the caller's "
                "organisation, or it has no attachment."
            ),
        },
        summary="Download the partner's attachment",
        description=(
            "The file behind the portal download, for the same callers: partner users, for "
            "their own organisation's feedback. The workspace offers no attachment download, "
            "so internal users get a 404 here too."
        ),
    )
    @action(detail=True, methods=["get"], content_negotiation_class=FileDownloadNegotiation)
    def attachment(self, request: Request, pk: str | None = None) -> FileResponse:
        # The portal's rule: its role check, then the same selector (another partner's is 404).
        if not is_partner_user(request.user):
            raise NotFound()
        feedback = self.get_object()
        if not feedback.attachment:
            raise NotFound("This feedback has no attachment.")
        return attachment_response(feedback)
