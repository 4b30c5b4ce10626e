"""Metrics over the API: weekly snapshot figures by segment, any rollup, a trend series,
per-partner figures, and the runs that wrote them. Everything is read from the snapshot tables
(never the live market), for sales managers and executives, the dashboard's audience."""

from __future__ import annotations

import math
from typing import Any

import django_filters
import pandas as pd
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import metrics
from analytics.api.serializers import (
    ROW_COLUMNS,
    MetricsRunSerializer,
    PartnerFiguresSerializer,
    PartnerQuerySerializer,
    RollupQuerySerializer,
    RollupRowSerializer,
    SegmentFiguresSerializer,
    SegmentQuerySerializer,
    TrendQuerySerializer,
    WeekSerializer,
)
from analytics.models import MetricsRun, PartnerSnapshot, RunStatus
from analytics.selectors import (
    PARTNER_SNAPSHOT_FIELDS,
    snapshot_latest_week,
    snapshot_report,
    snapshot_segment_rows,
    snapshot_trend,
    snapshot_week_exists,
    snapshot_weeks,
)
from crm.api.pagination import ReportPagination
from crm.api.permissions import LeadershipOnly


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _records(frame: pd.DataFrame, *, columns: list[str], **extra: Any) -> list[dict[str, Any]]:
    """Rows of `frame` as plain dicts with exactly `columns` (absent ones null)."""
    present = [column for column in columns if column in frame.columns]
    return [
        {
            **extra,
            **dict.fromkeys(columns),
            **{column: _plain(value) for column, value in zip(present, row, strict=True)},
        }
        for row in frame[present].itertuples(index=False, name=None)
    ]


# No model behind these views: they page plain rows read from the snapshot tables.
class _SnapshotView(generics.GenericAPIView[Any]):
    permission_classes = [LeadershipOnly]
    pagination_class = ReportPagination
    filter_backends: list[Any] = []

    def query(self, serializer_class: type) -> dict[str, Any]:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def week_of(self, query: dict[str, Any]) -> str:
        """The asked week, or the latest with a snapshot; 404 when there is none."""
        week = query.get("week") or snapshot_latest_week()
        if not week or not snapshot_week_exists(week):
            raise NotFound(f"No snapshot for {week or 'any week'}; compute the week first.")
        return week

    def page_of(self, rows: list[dict[str, Any]]) -> Response:
        # Rows are plain JSON-ready dicts with exactly the serializer's fields already; running
        # them through the serializer again would cost more than the query (2,000 rows x 30).
        # DRF pages a list as it pages a queryset; its type stubs name the queryset only.
        return self.get_paginated_response(self.paginate_queryset(rows))  # type: ignore[arg-type]


class MetricsSegmentsView(_SnapshotView):
    """One week's counts and ratios per segment (region, vertical, size band); the latest week
    with a snapshot when `week` is left out."""

    serializer_class = SegmentFiguresSerializer

    @extend_schema(
        parameters=[SegmentQuerySerializer],
        responses=SegmentFiguresSerializer(many=True),
        operation_id="metrics_segments_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(SegmentQuerySerializer)
        week = self.week_of(query)
        segment = {key: query[key] for key in metrics.SEGMENT_KEYS if query.get(key)}
        rows = snapshot_segment_rows(week, **segment)
        return self.page_of([{"week": week, **row} for row in rows])


class MetricsRollupView(_SnapshotView):
    """One week summed by `by` (segment, region, vertical, size_band, channel, partner or
    total): counts summed, then divided (ratios are never averaged). The same figures as
    `manage.py metrics_export --by ...`."""

    serializer_class = RollupRowSerializer

    @extend_schema(
        parameters=[RollupQuerySerializer],
        responses=RollupRowSerializer(many=True),
        operation_id="metrics_rollup_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(RollupQuerySerializer)
        week = self.week_of(query)
        by = query["by"]
        if by == "partner":
            frame = snapshot_report(week, by=by)
        else:
            # Summed in the database; the channel rows derive from the one total row, exactly as
            # `metrics.channel_rollup` derives them from the segments.
            segment = {key: query[key] for key in metrics.SEGMENT_KEYS if query.get(key)}
            frame = snapshot_trend([week], by="total" if by == "channel" else by, **segment)
            if by == "channel":
                frame = metrics.channel_rollup(frame)
        return self.page_of(_records(frame, columns=ROW_COLUMNS, week=week))


class MetricsTrendView(_SnapshotView):
    """A series from `first` to `last` (ISO weeks), summed by `by` per week; weeks without a
    snapshot are absent."""

    serializer_class = RollupRowSerializer

    @extend_schema(
        parameters=[TrendQuerySerializer],
        responses=RollupRowSerializer(many=True),
        operation_id="metrics_trend_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(TrendQuerySerializer)
        segment = {key: query[key] for key in metrics.SEGMENT_KEYS if query.get(key)}
        frame = snapshot_trend(query["weeks"], by=query["by"], **segment)
        return self.page_of(_records(frame, columns=["week", *ROW_COLUMNS]))


class MetricsPartnersView(_SnapshotView):
    """Per-partner figures of one week (DESIGN.md rule 6): accounts covered and converted,
    agreements in force, feedback count, mean satisfaction and NPS over the trailing 90 days."""

    serializer_class = PartnerFiguresSerializer

    @extend_schema(
        parameters=[PartnerQuerySerializer],
        responses=PartnerFiguresSerializer(many=True),
        operation_id="metrics_partners_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(PartnerQuerySerializer)
        week = self.week_of(query)
        rows = PartnerSnapshot.objects.filter(week=week).order_by("external_id")
        if query.get("partner") is not None:
            rows = rows.filter(partner_id=query["partner"])
        if query.get("channel_kind"):
            rows = rows.filter(channel_kind=query["channel_kind"])
        values = rows.values("partner_id", *PARTNER_SNAPSHOT_FIELDS)
        return self.page_of(
            [{"week": week, "partner": row.pop("partner_id"), **row} for row in values]
        )


class MetricsWeeksView(_SnapshotView):
    """The weeks that have a snapshot, oldest first."""

    serializer_class = WeekSerializer

    @extend_schema(responses=WeekSerializer(many=True), operation_id="metrics_weeks_list")
    def get(self, request: Request) -> Response:
        return self.page_of([{"week": week} for week in snapshot_weeks()])


class MetricsRunFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=RunStatus.choices)

    class Meta:
        model = MetricsRun
        fields = ["week", "status", "final"]


class MetricsRunViewSet(viewsets.ReadOnlyModelViewSet[MetricsRun]):
    """Metric runs: each attempt at computing a week, newest first; a crashed run shows as
    failed once the next run of its week starts."""

    serializer_class = MetricsRunSerializer
    permission_classes = [LeadershipOnly]
    filterset_class = MetricsRunFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[MetricsRun]:
        return MetricsRun.objects.order_by("-started_at", "-id")
