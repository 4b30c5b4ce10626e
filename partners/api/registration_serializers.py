"""Deal registrations over the API: the output shape, and separate inputs for each write.

Partner users never read `account` nor `conflicts` (both null for them): they name the account
that matched and the conflicts that involve other partners and channels.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.fields import KeyRelatedField
from crm.models import Region, SizeBand, Vertical
from partners.api.serializers import _viewer_is_internal
from partners.registration_models import ConflictCode, DealRegistration
from partners.registration_services import (
    MAX_EXTENSION_DAYS,
    MAX_PROTECTED_DAYS,
    REASON_MAX,
    TEXT_MAX,
    DealDetails,
)


class DealRegistrationSerializer(serializers.ModelSerializer[DealRegistration]):
    region: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    vertical: serializers.SlugRelatedField[Vertical] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    account = serializers.SerializerMethodField(
        help_text="Internal users: the matched account's external id (null for a prospect). "
        "Always null for partner users."
    )
    conflicts = serializers.SerializerMethodField(
        help_text="Internal users: the conflict codes as last computed. Null for partner users."
    )

    class Meta:
        model = DealRegistration
        fields = [
            "id",
            "external_id",
            "partner",
            "company_name",
            "website",
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
            "status",
            "needs_review",
            "decision_reason",
            "protected_until",
            "extension_status",
            "closed_on",
            "won_amount",
            "account",
            "conflicts",
            "submitted_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_account(self, registration: DealRegistration) -> str | None:
        if not _viewer_is_internal(self) or registration.account is None:
            return None
        return registration.account.external_id

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(ConflictCode.choices), allow_null=True)
    )
    def get_conflicts(self, registration: DealRegistration) -> list[str] | None:
        return registration.conflict_codes if _viewer_is_internal(self) else None


class DealRegistrationInputSerializer(serializers.Serializer[object]):
    """A partner user's new registration (`partners.registration_services.DealDetails`).
    `region`, `vertical` and `size_band` may be left out when `account` names one of the
    partner's own assigned accounts; otherwise they are required."""

    company_name = serializers.CharField(max_length=255)
    website = serializers.CharField(
        max_length=255, required=False, allow_blank=True, default="", help_text="e.g. example.com"
    )
    region = KeyRelatedField(
        slug_field="code",
        queryset=Region.objects.all(),
        required=False,
        allow_null=True,
        help_text="Region code.",
    )
    vertical = KeyRelatedField(
        slug_field="code",
        queryset=Vertical.objects.all(),
        required=False,
        allow_null=True,
        help_text="Vertical code.",
    )
    size_band = serializers.ChoiceField(
        choices=SizeBand.choices, required=False, allow_blank=True, default=""
    )
    offering = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    currency = serializers.CharField(
        min_length=3, max_length=3, default="USD", help_text="ISO 4217, e.g. USD, EUR, CNY."
    )
    expected_close_on = serializers.DateField(required=False, allow_null=True)
    description = serializers.CharField(
        max_length=TEXT_MAX, required=False, allow_blank=True, default=""
    )
    contact_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default=""
    )
    contact_email = serializers.EmailField(required=False, allow_blank=True, default="")
    contact_phone = serializers.CharField(
        max_length=50, required=False, allow_blank=True, default=""
    )
    account = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        default="",
        help_text="Optional: the external id of one of your organisation's assigned accounts.",
    )

    def details(self) -> DealDetails:
        data: dict[str, Any] = dict(self.validated_data)
        return DealDetails(**data)


class ApproveInputSerializer(serializers.Serializer[object]):
    protected_days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_PROTECTED_DAYS,
        required=False,
        allow_null=True,
        help_text="Days of protection from today; default: the partner tier's.",
    )
    reason = serializers.CharField(
        max_length=REASON_MAX, required=False, allow_blank=True, default=""
    )


class RejectInputSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(max_length=REASON_MAX, help_text="The partner reads it.")


class WonInputSerializer(serializers.Serializer[object]):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    closed_on = serializers.DateField()


class ReasonInputSerializer(serializers.Serializer[object]):
    reason = serializers.CharField(
        max_length=REASON_MAX, required=False, allow_blank=True, default=""
    )


class ExtendInputSerializer(serializers.Serializer[object]):
    days = serializers.IntegerField(
        min_value=1,
        max_value=MAX_EXTENSION_DAYS,
        required=False,
        allow_null=True,
        help_text="Sales managers: days to add; default: the partner tier's extension.",
    )
    note = serializers.CharField(
        max_length=REASON_MAX,
        required=False,
        allow_blank=True,
        default="",
        help_text="Partner users: why the deal needs longer.",
    )


class ConflictSerializer(serializers.Serializer[object]):
    """The answer to a refused action (409)."""

    detail = serializers.CharField(help_text="What refused it, naming the conflict.")
    conflict = serializers.CharField(
        help_text="already_registered, possible_duplicate, invalid_state, already_extended, "
        "already_requested, ..."
    )
