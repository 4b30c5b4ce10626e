"""Metric figures as the API returns them, read from the snapshot tables only.

A rollup row always carries every column of every `by`, null where a column does not belong to
the chosen dimension, so one schema describes all of them: dimension codes, the segment counts
and ratios (docs/metrics.md rule 4), the channel columns (`by=channel`) and the per-partner figures
(`by=partner`, rule 6).
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from analytics import metrics
from analytics.models import MetricsRun
from analytics.reports import EXPORT_DIMENSIONS, PARTNER_FIGURE_COLUMNS

WEEK_PATTERN = re.compile(r"^\d{4}-W\d{2}$")
SEGMENT_DIMENSIONS = list(metrics.ROLLUP_DIMENSIONS)
TEXT_COLUMNS = [*metrics.SEGMENT_KEYS, "channel", "external_id", "name", "channel_kind"]
RATIO_LIKE = {*metrics.RATIO_COLUMNS, "satisfaction_mean", "nps"}


def _ordered_union(*groups: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for group in groups:
        for name in group:
            seen.setdefault(name, None)
    return list(seen)


ROW_COLUMNS = _ordered_union(
    TEXT_COLUMNS,
    metrics.COUNT_COLUMNS,
    metrics.RATIO_COLUMNS,
    metrics.CHANNEL_COLUMNS,
    PARTNER_FIGURE_COLUMNS,
)


def _column_field(name: str) -> serializers.Field[Any, Any, Any, Any]:
    if name in TEXT_COLUMNS:
        return serializers.CharField(allow_null=True)
    if name in RATIO_LIKE:
        return serializers.FloatField(allow_null=True)
    return serializers.IntegerField(allow_null=True)


def _week_field(**kwargs: Any) -> serializers.CharField:
    kwargs.setdefault("help_text", 'An ISO week, e.g. "2026-W46".')
    return serializers.RegexField(WEEK_PATTERN.pattern, **kwargs)


class _Week:
    """Mixed into query serializers with a `week`: the week must exist in the calendar."""

    def validate_week(self, value: str) -> str:
        try:
            metrics.iso_week_as_of(value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None
        return value


SegmentFiguresSerializer = type(
    "SegmentFiguresSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "One segment's counts and ratios for a week.",
        "week": serializers.CharField(),
        **{name: serializers.CharField() for name in metrics.SEGMENT_KEYS},
        **{name: serializers.IntegerField() for name in metrics.COUNT_COLUMNS},
        **{name: serializers.FloatField(allow_null=True) for name in metrics.RATIO_COLUMNS},
    },
)

RollupRowSerializer = type(
    "RollupRowSerializer",
    (serializers.Serializer,),
    {
        "__doc__": "A row of `by`'s rollup: columns that do not belong to the dimension are null.",
        "week": serializers.CharField(),
        **{name: _column_field(name) for name in ROW_COLUMNS},
    },
)


class PartnerFiguresSerializer(serializers.Serializer[dict[str, object]]):
    """One partner's figures for a week (docs/metrics.md rule 6)."""

    week = serializers.CharField()
    partner = serializers.IntegerField()
    external_id = serializers.CharField()
    name = serializers.CharField()
    channel_kind = serializers.CharField()
    covered_accounts = serializers.IntegerField()
    converted_accounts = serializers.IntegerField()
    agreements_in_force = serializers.IntegerField()
    feedback_count = serializers.IntegerField()
    satisfaction_mean = serializers.FloatField(allow_null=True)
    nps = serializers.FloatField(allow_null=True)
    nps_responses = serializers.IntegerField(help_text="Feedback of the 90 days with a score.")
    nps_promoters = serializers.IntegerField(help_text="Of those, scores 9-10.")
    nps_detractors = serializers.IntegerField(help_text="Of those, scores 0-6.")


class WeekSerializer(serializers.Serializer[object]):
    week = serializers.CharField()


class SegmentQuerySerializer(_Week, serializers.Serializer[object]):
    week = _week_field(required=False)
    region = serializers.CharField(required=False, help_text="Region code.")
    vertical = serializers.CharField(required=False, help_text="Vertical code.")
    size_band = serializers.CharField(required=False)


class RollupQuerySerializer(SegmentQuerySerializer):
    by = serializers.ChoiceField(choices=EXPORT_DIMENSIONS, default="total")


class PartnerQuerySerializer(_Week, serializers.Serializer[object]):
    week = _week_field(required=False)
    partner = serializers.IntegerField(required=False, help_text="A partner id.")
    channel_kind = serializers.ChoiceField(choices=["distribution", "partner"], required=False)


class TrendQuerySerializer(serializers.Serializer[object]):
    first = _week_field(help_text='The first ISO week of the series, e.g. "2026-W30".')
    last = _week_field(help_text='The last ISO week of the series, e.g. "2026-W46".')
    by = serializers.ChoiceField(choices=SEGMENT_DIMENSIONS, default="total")
    region = serializers.CharField(required=False, help_text="Region code.")
    vertical = serializers.CharField(required=False, help_text="Vertical code.")
    size_band = serializers.CharField(required=False)

    MAX_WEEKS = 157

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        try:
            weeks = metrics.iso_weeks_between(attrs["first"], attrs["last"])
        except ValueError as error:
            raise serializers.ValidationError({"first": [str(error)]}) from None
        if not weeks:
            raise serializers.ValidationError({"last": ["The last week is before the first."]})
        if len(weeks) > self.MAX_WEEKS:
            raise serializers.ValidationError(
                {"last": [f"A series spans at most {self.MAX_WEEKS} weeks."]}
            )
        attrs["weeks"] = weeks
        return attrs


class RegistrationFiguresSerializer(serializers.Serializer[object]):
    """A week's deal registrations (docs/metrics.md rule 18) of a filter: region, vertical and
    size band "" for any; channel kind "" for all kinds together."""

    week = serializers.CharField()
    region = serializers.CharField()
    vertical = serializers.CharField()
    size_band = serializers.CharField()
    channel_kind = serializers.CharField()
    submitted = serializers.IntegerField(help_text="Submitted in the week.")
    approved = serializers.IntegerField(help_text="Approved in the week, by a manager or not.")
    rejected = serializers.IntegerField(help_text="Rejected in the week.")
    won = serializers.IntegerField(help_text="Won with a close date in the week.")
    decisions_timed = serializers.IntegerField(
        help_text="Approvals and rejections by a manager in the week."
    )
    decision_hours_median = serializers.FloatField(
        allow_null=True, help_text="Median hours from submission to a manager's decision."
    )
    checked = serializers.IntegerField(
        help_text="Of those submitted, the ones whose conflicts were checked on arrival."
    )
    with_conflicts = serializers.IntegerField(help_text="Of those, with a conflict.")
    conflict_share = serializers.FloatField(
        allow_null=True, help_text="with_conflicts / checked; null when none was checked."
    )


class RegistrationQuerySerializer(serializers.Serializer[object]):
    first = _week_field(
        required=False,
        help_text='The first ISO week, e.g. "2026-W30"; the latest week alone '
        "when left out with `last`.",
    )
    last = _week_field(required=False, help_text='The last ISO week, e.g. "2026-W46".')
    region = serializers.CharField(required=False, help_text="Region code.")
    vertical = serializers.CharField(required=False, help_text="Vertical code.")
    size_band = serializers.CharField(required=False)
    channel_kind = serializers.ChoiceField(
        choices=["distribution", "partner"],
        required=False,
        help_text="The partners' channel kind; all kinds together when left out.",
    )
    by_channel = serializers.BooleanField(
        default=False, help_text="One row per channel kind that registers, instead of one."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [attrs[key] for key in ("first", "last") if attrs.get(key)]
        if not given:
            return attrs
        first, last = given[0], given[-1]
        try:
            weeks = metrics.iso_weeks_between(first, last)
        except ValueError as error:
            raise serializers.ValidationError({"first": [str(error)]}) from None
        if not weeks:
            raise serializers.ValidationError({"last": ["The last week is before the first."]})
        if len(weeks) > TrendQuerySerializer.MAX_WEEKS:
            raise serializers.ValidationError(
                {"last": [f"A series spans at most {TrendQuerySerializer.MAX_WEEKS} weeks."]}
            )
        attrs["weeks"] = weeks
        return attrs


class MetricsRunSerializer(serializers.ModelSerializer[MetricsRun]):
    class Meta:
        model = MetricsRun
        fields = [
            "id",
            "week",
            "as_of",
            "final",
            "status",
            "started_at",
            "finished_at",
            "rows_written",
            "seconds",
            "error",
        ]
        read_only_fields = fields


class RevenueQuerySerializer(_Week, serializers.Serializer[object]):
    week = _week_field(required=False)
    by = serializers.ChoiceField(choices=EXPORT_DIMENSIONS, default="total")


def _amount(help_text: str) -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class RevenueRowSerializer(serializers.Serializer[object]):
    """A week's revenue figures for one value of `by` and one sourcing channel (docs/metrics.md
    rules 10-17), the same as `metrics_export --report revenue`. Amounts are text with two
    decimals in the reporting currency; grouping columns that do not apply are absent."""

    week = serializers.CharField()
    region = serializers.CharField(required=False)
    vertical = serializers.CharField(required=False)
    size_band = serializers.CharField(required=False)
    partner = serializers.CharField(required=False, help_text="The partner's external id.")
    channel = serializers.CharField(required=False, help_text="The sourcing channel.")
    pipeline_count = serializers.IntegerField()
    pipeline_amount = _amount("Open deals on the as-of day.")
    weighted_pipeline = _amount("The pipeline weighted by each step's win probability.")
    won_count = serializers.IntegerField()
    won_amount = _amount("Won in the 52 weeks ending on the as-of day.")
    mrr = _amount("Monthly fees of running subscriptions.")
    subscribers = serializers.IntegerField()
    arpa = _amount("mrr / subscribers; null without subscribers.")
    influenced_amount = _amount("Won revenue this channel influenced (never add to sourced).")
