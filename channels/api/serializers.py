"""Sales reps: the output shape."""

from __future__ import annotations

from rest_framework import serializers

from channels.models import SalesRep
from crm.models import Region


class SalesRepSerializer(serializers.ModelSerializer[SalesRep]):
    regions: serializers.SlugRelatedField[Region] = serializers.SlugRelatedField(
        slug_field="code", many=True, read_only=True
    )

    class Meta:
        model = SalesRep
        fields = ["id", "external_id", "name", "email", "regions", "is_active"]
        read_only_fields = fields
