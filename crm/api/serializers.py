"""Output shapes of the market core. Explicit fields; regions and verticals by code."""

from __future__ import annotations

from rest_framework import serializers

from crm.columns import ACCOUNT_COLUMNS
from crm.models import Account, ChannelKind, Region, Vertical


class RegionSerializer(serializers.ModelSerializer[Region]):
    # A declared field leaves the class, so it never meets DRF's own Field.parent attribute.
    parent: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = Region
        fields = ["id", "code", "name", "parent"]
        read_only_fields = fields


class VerticalSerializer(serializers.ModelSerializer[Vertical]):
    class Meta:
        model = Vertical
        fields = ["id", "code", "name"]
        read_only_fields = fields


class AccountSerializer(serializers.ModelSerializer[Account]):
    region: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    vertical: serializers.SlugRelatedField[Vertical] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    converted_via = serializers.ChoiceField(
        choices=ChannelKind.choices,
        allow_blank=True,
        read_only=True,
        help_text="The channel kind that won it; empty while not converted.",
    )

    class Meta:
        model = Account
        fields = ["id", *ACCOUNT_COLUMNS]
        read_only_fields = fields
