"""Coverage assignments: the output shape, and the inputs of the coverage writes. They live with
the partners because an assignment may name a partner."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework import serializers

from channels.models import CoverageAssignment, SalesRep
from crm.api.fields import choices_from
from crm.models import Account, ChannelKind
from partners.models import Partner

MAX_ACCOUNTS_PER_REQUEST = 1000


class CoverageAssignmentSerializer(serializers.ModelSerializer[CoverageAssignment]):
    owner = serializers.CharField(source="owner_label", read_only=True)

    class Meta:
        model = CoverageAssignment
        fields = [
            "id",
            "account",
            "kind",
            "rep",
            "partner",
            "online_source",
            "owner",
            "start_date",
            "end_date",
        ]
        read_only_fields = fields


class CoverageAssignInputSerializer(serializers.Serializer[object]):
    """Assign accounts to one channel owner: a rep for direct, a partner for distribution or
    partner, a source label for online. Account, rep and partner ids come from what the caller
    may see (the view passes its selectors); any other id is refused as if it did not exist."""

    accounts = serializers.PrimaryKeyRelatedField(many=True, queryset=Account.objects.none())
    kind = serializers.ChoiceField(choices=ChannelKind.choices)
    rep = serializers.PrimaryKeyRelatedField(
        queryset=SalesRep.objects.none(), required=False, allow_null=True
    )
    partner = serializers.PrimaryKeyRelatedField(
        queryset=Partner.objects.none(), required=False, allow_null=True
    )
    online_source = serializers.CharField(max_length=100, required=False, allow_blank=True)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)

    def __init__(
        self,
        *args: Any,
        accounts: QuerySet[Account] | None = None,
        reps: QuerySet[SalesRep] | None = None,
        partners: QuerySet[Partner] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        choices_from(self, {"accounts": accounts, "rep": reps, "partner": partners})

    def validate_accounts(self, value: list[Account]) -> list[Account]:
        if not value:
            raise serializers.ValidationError("Give at least one account id.")
        if len(value) > MAX_ACCOUNTS_PER_REQUEST:
            raise serializers.ValidationError(
                f"At most {MAX_ACCOUNTS_PER_REQUEST} accounts per request."
            )
        return value


class CoverageResultSerializer(serializers.Serializer[dict[str, int]]):
    created = serializers.IntegerField()
    already_covered = serializers.IntegerField()


class CoverageEndInputSerializer(serializers.Serializer[object]):
    end_date = serializers.DateField(help_text="The last day of coverage (inclusive).")
