"""Partners, contacts, agreements and feedback: output shapes, and separate inputs for writes.

Inputs never carry what the caller may not set: no status, no owner, no ids of objects outside
the caller's selectors (related fields take their choices from the selector in the view).
"""

from __future__ import annotations

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.models import Region, Vertical
from crm.roles import is_internal
from partners.models import (
    Agreement,
    AgreementType,
    Feedback,
    FeedbackCategory,
    FeedbackNote,
    FeedbackReply,
    FeedbackStatus,
    Partner,
    PartnerContact,
    PartnerKind,
    PartnerType,
)
from partners.programme_models import Tier
from partners.programme_selectors import entry_tier


def _viewer_is_internal(serializer: serializers.BaseSerializer[Any]) -> bool:
    request = serializer.context.get("request")
    return request is not None and is_internal(request.user)


class PartnerSerializer(serializers.ModelSerializer[Partner]):
    notes = serializers.SerializerMethodField(help_text="Internal notes; empty for partner users.")
    website = serializers.CharField(read_only=True, help_text="A URL, or empty.")

    class Meta:
        model = Partner
        fields = [
            "id",
            "external_id",
            "name",
            "channel_kind",
            "partner_type",
            "tier",
            "is_active",
            "website",
            "country",
            "notes",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_notes(self, partner: Partner) -> str:
        return partner.notes if _viewer_is_internal(self) else ""


class PartnerInputSerializer(serializers.Serializer[object]):
    """A partner's profile, as `partners.services.PartnerProfile` takes it."""

    external_id = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=200)
    channel_kind = serializers.ChoiceField(choices=PartnerKind.choices)
    partner_type = serializers.ChoiceField(choices=PartnerType.choices)
    tier = serializers.CharField(
        max_length=16,
        default=entry_tier,
        help_text="The code of one of the programme's tiers (GET /api/v1/programme/tiers/); "
        "the entry tier when left out.",
    )

    def validate_tier(self, value: str) -> str:
        if not Tier.objects.filter(code=value).exists():
            raise serializers.ValidationError("Choose one of the programme's tier codes.")
        return value

    is_active = serializers.BooleanField(default=True)
    website = serializers.URLField(max_length=200, required=False, allow_blank=True, default="")
    country = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    notes = serializers.CharField(required=False, allow_blank=True, default="")


class PartnerContactSerializer(serializers.ModelSerializer[PartnerContact]):
    class Meta:
        model = PartnerContact
        fields = ["id", "partner", "name", "email", "phone", "title", "is_primary"]
        read_only_fields = fields


class PartnerContactInputSerializer(serializers.Serializer[object]):
    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.none())
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    phone = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    title = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    is_primary = serializers.BooleanField(default=False)

    def __init__(
        self, *args: Any, partners: QuerySet[Partner] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            partner_field = cast(
                "serializers.PrimaryKeyRelatedField[Partner]", self.fields["partner"]
            )
            partner_field.queryset = partners


def _codes(agreement: Agreement, name: str) -> list[str]:
    # The list views prefetch into `<name>_codes` (see AgreementViewSet); reading a plain list
    # spares building a related manager per agreement and field.
    prefetched = getattr(agreement, f"{name}_codes", None)
    if prefetched is None:
        prefetched = getattr(agreement, name).all()
    return [item.code for item in prefetched]


class AgreementSerializer(serializers.ModelSerializer[Agreement]):
    partner: serializers.PrimaryKeyRelatedField[Partner] = serializers.PrimaryKeyRelatedField(
        read_only=True
    )
    regions = serializers.SerializerMethodField(help_text="Region codes; none means all.")
    verticals = serializers.SerializerMethodField(help_text="Vertical codes; none means all.")
    renews: serializers.PrimaryKeyRelatedField[Agreement] = serializers.PrimaryKeyRelatedField(
        read_only=True, allow_null=True
    )
    signed_document_name = serializers.CharField(read_only=True)

    class Meta:
        model = Agreement
        fields = [
            "id",
            "external_id",
            "partner",
            "agreement_type",
            "status",
            "start_date",
            "end_date",
            "signed_on",
            "terminated_on",
            "termination_reason",
            "auto_renew",
            "notice_days",
            "regions",
            "verticals",
            "exclusive",
            "discount_percent",
            "revenue_share_percent",
            "annual_target",
            "currency",
            "responsibilities",
            "rights",
            "signed_document_name",
            "renews",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_regions(self, agreement: Agreement) -> list[str]:
        return _codes(agreement, "regions")

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_verticals(self, agreement: Agreement) -> list[str]:
        return _codes(agreement, "verticals")


class AgreementTermsInputSerializer(serializers.Serializer[object]):
    """A draft's terms (`partners.services.AgreementTerms`); regions and verticals by code,
    none meaning all."""

    agreement_type = serializers.ChoiceField(choices=AgreementType.choices)
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    regions = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=Region.objects.all(), required=False
    )
    verticals = serializers.SlugRelatedField(
        slug_field="code", many=True, queryset=Vertical.objects.all(), required=False
    )
    exclusive = serializers.BooleanField(default=False)
    auto_renew = serializers.BooleanField(default=False)
    notice_days = serializers.IntegerField(min_value=0, max_value=3650, default=30)
    discount_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False, allow_null=True
    )
    revenue_share_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=100, required=False, allow_null=True
    )
    annual_target = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, required=False, allow_null=True
    )
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="USD")
    responsibilities = serializers.CharField(required=False, allow_blank=True, default="")
    rights = serializers.CharField(required=False, allow_blank=True, default="")


class AgreementDraftInputSerializer(AgreementTermsInputSerializer):
    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.none())

    def __init__(
        self, *args: Any, partners: QuerySet[Partner] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            partner_field = cast(
                "serializers.PrimaryKeyRelatedField[Partner]", self.fields["partner"]
            )
            partner_field.queryset = partners


class AgreementActivateInputSerializer(serializers.Serializer[object]):
    signed_on = serializers.DateField()
    signed_document = serializers.FileField(
        help_text="The signed agreement, a PDF of at most 10 MB."
    )


class AgreementTerminateInputSerializer(serializers.Serializer[object]):
    terminated_on = serializers.DateField()
    reason = serializers.CharField(max_length=2000, allow_blank=True)


class FeedbackSerializer(serializers.ModelSerializer[Feedback]):
    assignee = serializers.SerializerMethodField(help_text="Internal; null for partner users.")
    has_attachment = serializers.SerializerMethodField()

    class Meta:
        model = Feedback
        fields = [
            "id",
            "partner",
            "category",
            "satisfaction",
            "nps",
            "subject",
            "body",
            "status",
            "assignee",
            "has_attachment",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_assignee(self, feedback: Feedback) -> int | None:
        return feedback.assignee_id if _viewer_is_internal(self) else None

    def get_has_attachment(self, feedback: Feedback) -> bool:
        return bool(feedback.attachment)


class FeedbackInputSerializer(serializers.Serializer[object]):
    """New feedback. Partner users submit for their own organisation and leave `partner` out;
    sales managers log feedback heard from a partner and name it."""

    partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.none(),
        required=False,
        allow_null=True,
        help_text="Sales managers only: the partner the feedback came from.",
    )
    category = serializers.ChoiceField(choices=FeedbackCategory.choices)
    satisfaction = serializers.IntegerField(min_value=1, max_value=5)
    nps = serializers.IntegerField(min_value=0, max_value=10, required=False, allow_null=True)
    subject = serializers.CharField(max_length=200)
    body = serializers.CharField(max_length=5000)
    attachment = serializers.FileField(
        required=False,
        help_text="Partner users, multipart only: a PDF, PNG or JPEG of at most 5 MB.",
    )

    def __init__(
        self, *args: Any, partners: QuerySet[Partner] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            partner_field = cast(
                "serializers.PrimaryKeyRelatedField[Partner]", self.fields["partner"]
            )
            partner_field.queryset = partners


class FeedbackMessageSerializer(serializers.Serializer[object]):
    body = serializers.CharField(max_length=5000)


class FeedbackReplySerializer(serializers.ModelSerializer[FeedbackReply | FeedbackNote]):
    author = serializers.SerializerMethodField()
    from_partner = serializers.SerializerMethodField()

    class Meta:
        model = FeedbackReply
        fields = ["id", "feedback", "author", "from_partner", "body", "created_at"]
        read_only_fields = fields

    def get_author(self, reply: FeedbackReply | FeedbackNote) -> str:
        if reply.author is None:
            return ""
        return reply.author.get_full_name() or reply.author.get_username()

    def get_from_partner(self, reply: FeedbackReply | FeedbackNote) -> bool:
        return reply.author is not None and not is_internal(reply.author)


class FeedbackNoteSerializer(FeedbackReplySerializer):
    class Meta:
        model = FeedbackNote
        fields = ["id", "feedback", "author", "body", "created_at"]
        read_only_fields = fields


class FeedbackTriageInputSerializer(serializers.Serializer[object]):
    status = serializers.ChoiceField(choices=FeedbackStatus.choices)
    assignee = serializers.IntegerField(
        required=False, allow_null=True, help_text="The internal user's id, or null."
    )
