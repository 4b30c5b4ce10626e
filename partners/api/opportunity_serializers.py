"""Opportunities over the API: the output shape, and the input of opening a deal."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework import serializers

from channels.models import Opportunity, OpportunitySubStage, SalesRep
from crm.api.fields import KeyRelatedField, choices_from
from crm.models import Account, ChannelKind
from partners.models import Partner
from partners.registration_models import DealRegistration


class OpportunitySerializer(serializers.ModelSerializer[Opportunity]):
    account: serializers.SlugRelatedField[Account] = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True
    )
    rep: serializers.SlugRelatedField[SalesRep] = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True
    )
    partner: serializers.SlugRelatedField[Partner] = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True
    )
    sub_stage: serializers.SlugRelatedField[OpportunitySubStage] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    registration: serializers.SlugRelatedField[DealRegistration] = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True
    )

    class Meta:
        model = Opportunity
        fields = [
            "id",
            "external_id",
            "name",
            "account",
            "channel",
            "rep",
            "partner",
            "online_source",
            "stage",
            "sub_stage",
            "amount",
            "currency",
            "recurring",
            "opened_on",
            "expected_close_on",
            "closed_on",
            "ends_on",
            "lost_reason",
            "registration",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class OpportunityInputSerializer(serializers.Serializer[object]):
    """Open a deal (sales managers). The owner field the channel takes: `rep` (external id)
    for direct, `partner` (external id) for distribution and partner, `online_source` for
    online. Account, rep and partner ids come from what the caller may see."""

    account = KeyRelatedField(
        slug_field="external_id", queryset=Account.objects.none(), help_text="External id."
    )
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    channel = serializers.ChoiceField(choices=ChannelKind.choices)
    rep = KeyRelatedField(
        slug_field="external_id", queryset=SalesRep.objects.none(), required=False, allow_null=True
    )
    partner = KeyRelatedField(
        slug_field="external_id", queryset=Partner.objects.none(), required=False, allow_null=True
    )
    online_source = serializers.CharField(
        max_length=100, required=False, allow_blank=True, default=""
    )
    sub_stage = KeyRelatedField(
        slug_field="code",
        queryset=OpportunitySubStage.objects.all(),
        required=False,
        allow_null=True,
        help_text="The open step's code; the first step when left out.",
    )
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    currency = serializers.CharField(
        min_length=3, max_length=3, default=settings.REPORTING_CURRENCY, help_text="ISO 4217."
    )
    recurring = serializers.BooleanField(
        default=False, help_text="The amount is a monthly fee (a subscription)."
    )
    opened_on = serializers.DateField()
    expected_close_on = serializers.DateField(required=False, allow_null=True)

    def __init__(
        self,
        *args: Any,
        accounts: QuerySet[Account] | None = None,
        reps: QuerySet[SalesRep] | None = None,
        partners: QuerySet[Partner] | None = None,
        **kwargs: Any,
    ) -> None:
        # Without the caller's querysets (the schema generator) every id is refused.
        super().__init__(*args, **kwargs)
        choices_from(self, {"account": accounts, "rep": reps, "partner": partners})
