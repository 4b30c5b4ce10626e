"""The partner programme over the API: output shapes, and separate inputs for writes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.roles import is_internal
from partners.models import FeedbackCategory, Partner
from partners.programme_models import (
    REQUIREMENTS,
    Certification,
    Survey,
    SurveyResponse,
    SurveySchedule,
    SurveyWave,
    Tier,
    TierChange,
)
from partners.programme_selectors import ResponseRate


class TierSerializer(serializers.ModelSerializer[Tier]):
    requirements = serializers.SerializerMethodField(
        help_text="The minimum of each figure the tier requires, by requirement key (only those "
        "it sets): covered_accounts, conversions, sourced_revenue, registrations_won, "
        "satisfaction, nps, certifications."
    )

    class Meta:
        model = Tier
        fields = [
            "id",
            "code",
            "name",
            "name_zh",
            "rank",
            "requirements",
            "protection_days",
            "extension_days",
            "auto_approve",
            "discount_percent",
            "benefits_note",
        ]
        read_only_fields = fields

    def get_requirements(self, tier: Tier) -> dict[str, float]:
        return {
            r.key: float(value)
            for r in REQUIREMENTS
            if (value := getattr(tier, r.field)) is not None
        }


class TierInputSerializer(serializers.Serializer[object]):
    """A tier as `partners.programme_services.TierValues` takes it; a requirement left out or
    null is not required."""

    code = serializers.CharField(max_length=16)
    name = serializers.CharField(max_length=100)
    name_zh = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    rank = serializers.IntegerField(min_value=0, max_value=99)
    min_covered_accounts = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    min_conversions = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    min_sourced_revenue = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=Decimal(0), required=False, allow_null=True
    )
    min_registrations_won = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    min_satisfaction = serializers.DecimalField(
        max_digits=3,
        decimal_places=2,
        min_value=Decimal(1),
        max_value=Decimal(5),
        required=False,
        allow_null=True,
    )
    min_nps = serializers.IntegerField(
        min_value=-100, max_value=100, required=False, allow_null=True
    )
    min_certifications = serializers.IntegerField(min_value=0, required=False, allow_null=True)
    protection_days = serializers.IntegerField(min_value=1, max_value=730, default=90)
    extension_days = serializers.IntegerField(min_value=1, max_value=365, default=30)
    auto_approve = serializers.BooleanField(default=False)
    discount_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=Decimal(0),
        max_value=Decimal(100),
        required=False,
        allow_null=True,
    )
    benefits_note = serializers.CharField(
        max_length=2000, required=False, allow_blank=True, default=""
    )


class TierChangeSerializer(serializers.ModelSerializer[TierChange]):
    partner = serializers.IntegerField(source="partner_id", read_only=True)
    changed_by = serializers.SerializerMethodField()

    class Meta:
        model = TierChange
        fields = [
            "id",
            "partner",
            "week",
            "as_of",
            "from_tier",
            "to_tier",
            "source",
            "evidence",
            "reason",
            "changed_by",
            "created_at",
        ]
        read_only_fields = fields

    def get_changed_by(self, change: TierChange) -> str | None:
        """The manager who set the tier (internal callers only); none for the evaluation."""
        request = self.context.get("request")
        if change.changed_by is None or request is None or not is_internal(request.user):
            return None
        return str(change.changed_by.get_username())


class CertificationSerializer(serializers.ModelSerializer[Certification]):
    partner = serializers.IntegerField(source="partner_id", read_only=True)

    class Meta:
        model = Certification
        fields = ["id", "partner", "name", "holder", "earned_on", "expires_on", "created_at"]
        read_only_fields = fields


class CertificationInputSerializer(serializers.Serializer[object]):
    partner = serializers.PrimaryKeyRelatedField(queryset=Partner.objects.none())
    name = serializers.CharField(max_length=200)
    holder = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    earned_on = serializers.DateField()
    expires_on = serializers.DateField(required=False, allow_null=True, default=None)

    def __init__(
        self, *args: Any, partners: QuerySet[Partner] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if partners is not None:
            partner_field = cast(
                "serializers.PrimaryKeyRelatedField[Partner]", self.fields["partner"]
            )
            partner_field.queryset = partners


class SurveySerializer(serializers.ModelSerializer[Survey]):
    class Meta:
        model = Survey
        fields = [
            "id",
            "name",
            "intro",
            "categories",
            "free_text_question",
            "schedule",
            "send_day",
            "open_days",
            "reminder_days_before_close",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields


class SurveyInputSerializer(serializers.Serializer[object]):
    name = serializers.CharField(max_length=200)
    intro = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    categories = serializers.ListField(
        child=serializers.ChoiceField(choices=FeedbackCategory.choices), min_length=1, max_length=8
    )
    free_text_question = serializers.CharField(max_length=300, default="What should we do better?")
    schedule = serializers.ChoiceField(choices=SurveySchedule.choices, default="quarterly")
    send_day = serializers.IntegerField(min_value=1, max_value=28, default=1)
    open_days = serializers.IntegerField(min_value=3, max_value=90, default=21)
    reminder_days_before_close = serializers.IntegerField(min_value=1, max_value=60, default=7)
    is_active = serializers.BooleanField(default=True)


class ResponseRateSerializer(serializers.Serializer[object]):
    channel_kind = serializers.CharField(help_text='"" for every partner.')
    invited = serializers.IntegerField()
    answered = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)
    partners = serializers.IntegerField()
    partners_answered = serializers.IntegerField()
    partner_rate = serializers.FloatField(allow_null=True)


class SurveyWaveSerializer(serializers.ModelSerializer[SurveyWave]):
    survey = serializers.IntegerField(source="survey_id", read_only=True)
    response_rates = serializers.SerializerMethodField()

    class Meta:
        model = SurveyWave
        fields = [
            "id",
            "survey",
            "opens_on",
            "closes_on",
            "sent_at",
            "reminded_at",
            "response_rates",
        ]
        read_only_fields = fields

    @extend_schema_field(ResponseRateSerializer(many=True))
    def get_response_rates(self, wave: SurveyWave) -> list[dict[str, object]]:
        rates: dict[int, list[ResponseRate]] = self.context.get("rates", {})
        shown: list[Mapping[str, object]] = list(rates.get(wave.pk, []))
        keys = [str(key) for key in ResponseRateSerializer().fields]
        return [{key: row[key] for key in keys} for row in shown]


class SurveyResponseSerializer(serializers.ModelSerializer[SurveyResponse]):
    partner = serializers.IntegerField(source="partner_id", read_only=True)
    wave = serializers.IntegerField(source="invitation.wave_id", read_only=True)
    scores = serializers.SerializerMethodField(help_text="Satisfaction 1-5 per category rated.")
    feedback = serializers.SerializerMethodField(help_text="The feedback entries it created.")

    class Meta:
        model = SurveyResponse
        fields = ["id", "partner", "wave", "scores", "nps", "comment", "feedback", "created_at"]
        read_only_fields = fields

    def get_scores(self, response: SurveyResponse) -> dict[str, int]:
        return {entry.category: entry.satisfaction for entry in response.feedback.all()}

    def get_feedback(self, response: SurveyResponse) -> list[int]:
        return [entry.pk for entry in response.feedback.all()]
