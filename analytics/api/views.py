"""Metrics over the API: weekly snapshot figures by segment, any rollup, a trend series,
per-partner figures, and the runs that wrote them. Every figure comes from `analytics.reports`
(the snapshot tables, never the live market), for sales managers and executives, the
dashboard's audience."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

import django_filters
from django.core.cache import cache
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, viewsets
from rest_framework.exceptions import NotFound
from rest_framework.filters import BaseFilterBackend
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import metrics, reports
from analytics.api.serializers import (
    ROW_COLUMNS,
    MetricsRunSerializer,
    PartnerFiguresSerializer,
    PartnerQuerySerializer,
    RegistrationFiguresSerializer,
    RegistrationQuerySerializer,
    RevenueQuerySerializer,
    RevenueRowSerializer,
    RollupQuerySerializer,
    RollupRowSerializer,
    SegmentFiguresSerializer,
    SegmentQuerySerializer,
    TrendQuerySerializer,
    WeekSerializer,
)
from analytics.models import MetricsRun, RunStatus
from crm.api.pagination import ReportPagination
from crm.api.permissions import LeadershipOnly
from crm.api.renderers import EncodedRows, EncodedRowsJSONRenderer, encode_rows

# Part of every cache key: a deploy that changes the rows' shape changes it. Rows of versions
# no longer asked for are left to expire.
API_CACHE_SHAPE = "api-figures-1"
API_CACHE_SECONDS = 3600


class _Row(Protocol):
    """A typed row of `analytics.reports`."""

    def _asdict(self) -> dict[str, Any]: ...


def _record(
    row: _Row, *, columns: Sequence[str], present: Sequence[str], **extra: object
) -> dict[str, object]:
    """A typed row of `analytics.reports` as a plain dict with exactly `columns`: those in
    `present` from the row, the rest null."""
    values = row._asdict()
    return {
        **extra,
        **dict.fromkeys(columns),
        **{column: values[column] for column in present},
    }


def _segment_columns(by: str) -> list[str]:
    return [*metrics.ROLLUP_DIMENSIONS[by], *metrics.COUNT_COLUMNS, *metrics.RATIO_COLUMNS]


# No model behind these views: they page plain rows read from the snapshot tables.
class _SnapshotView(generics.GenericAPIView[Any]):
    """A view of snapshot figures. Its rows are encoded to JSON once and cached under the
    snapshot version with the view and the validated query (`cached_rows`); each request pages
    them and joins the page's texts into the usual envelope (`EncodedRowsJSONRenderer`)."""

    permission_classes = [LeadershipOnly]
    pagination_class = ReportPagination
    renderer_classes = [EncodedRowsJSONRenderer]
    filter_backends: list[type[BaseFilterBackend]] = []

    def query(self, serializer_class: type) -> dict[str, Any]:
        query = serializer_class(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    def week_of(self, query: dict[str, Any]) -> str:
        """The asked week, or the latest with a snapshot; 404 when there is none."""
        week = query.get("week") or reports.latest_week()
        if not week or not reports.has_week(week):
            raise NotFound(f"No snapshot for {week or 'any week'}; compute the week first.")
        return week

    def page_of(
        self, query: dict[str, Any], rows: Callable[[], Sequence[Mapping[str, object]]]
    ) -> Response:
        """A page of `rows()`, plain JSON-ready dicts with exactly the serializer's fields
        (running 2,000 rows through the serializer would cost more than the query), read only
        when the rows of `query` are not cached under the current snapshot version."""
        encoded = cached_rows(type(self).__name__, query, rows)
        # DRF pages a list as it pages a queryset; its type stubs name the queryset only.
        page = self.paginate_queryset(encoded)  # type: ignore[arg-type]
        return self.get_paginated_response(EncodedRows(page or []))


def cached_rows(
    name: str, query: Mapping[str, Any], rows: Callable[[], Sequence[Mapping[str, object]]]
) -> list[bytes]:
    """The rows of view `name` for `query` (its validated parameters, the week it resolved to
    included), encoded (`encode_rows`) and cached under the snapshot version, which every
    finished run changes. The figures are the same for every caller who may reach these
    views (`LeadershipOnly`, checked before a view runs: sales managers and executives;
    nobody else gets past it), so the key holds no caller."""
    version = reports.snapshot_version()  # before the rows: they are at least this new
    source = repr((API_CACHE_SHAPE, name, version, sorted(query.items())))
    key = "api-figures:" + hashlib.sha256(source.encode()).hexdigest()
    encoded = cache.get(key)
    if encoded is None:
        encoded = encode_rows(rows())
        cache.set(key, encoded, API_CACHE_SECONDS)
    return cast(list[bytes], encoded)


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
        return self.page_of(
            {**query, "week": week},
            lambda: [row._asdict() for row in reports.segments(week, **segment)],
        )


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
        segment = {key: query[key] for key in metrics.SEGMENT_KEYS if query.get(key)}

        def records() -> list[dict[str, object]]:
            rows: Sequence[_Row]
            if by == "partner":
                rows, present = reports.partners(week), reports.PARTNER_FIGURE_COLUMNS
            elif by == "channel":
                rows, present = reports.channel_rollup(week, **segment), metrics.CHANNEL_COLUMNS
            else:
                keys = metrics.ROLLUP_DIMENSIONS[by]
                rows, present = reports.rollup([week], by=keys, **segment), _segment_columns(by)
            return [_record(row, columns=ROW_COLUMNS, present=present, week=week) for row in rows]

        return self.page_of({**query, "week": week}, records)


class MetricsRevenueView(_SnapshotView):
    """One week's revenue by `by` (segment, region, vertical, size_band, channel, partner or
    total) and sourcing channel: the same figures, to the cent, as the dashboard and
    `manage.py metrics_export --report revenue --by ...`."""

    serializer_class = RevenueRowSerializer

    @extend_schema(
        parameters=[RevenueQuerySerializer],
        responses=RevenueRowSerializer(many=True),
        operation_id="metrics_revenue_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(RevenueQuerySerializer)
        week = self.week_of(query)

        def records() -> list[dict[str, object]]:
            columns, rows = reports.revenue_export(week, by=query["by"])
            return [{"week": week, **dict(zip(columns, row, strict=True))} for row in rows]

        return self.page_of({**query, "week": week}, records)


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
        by = query["by"]
        columns, present = ["week", *ROW_COLUMNS], ["week", *_segment_columns(by)]

        def records() -> list[dict[str, object]]:
            rows = reports.rollup(query["weeks"], by=metrics.ROLLUP_DIMENSIONS[by], **segment)
            return [_record(row, columns=columns, present=present) for row in rows]

        return self.page_of(query, records)


class MetricsPartnersView(_SnapshotView):
    """Per-partner figures of one week (docs/metrics.md rule 6): accounts covered and converted,
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

        def records() -> list[dict[str, object]]:
            rows = reports.partners(
                week, partner_id=query.get("partner"), channel_kind=query.get("channel_kind") or ""
            )
            return [
                _record(
                    row,
                    columns=reports.PARTNER_FIGURE_COLUMNS,
                    present=reports.PARTNER_FIGURE_COLUMNS,
                    week=week,
                    partner=row.partner_id,
                )
                for row in rows
            ]

        return self.page_of({**query, "week": week}, records)


class MetricsRegistrationsView(_SnapshotView):
    """Deal registrations per week (docs/metrics.md rule 18): submitted, approved, rejected and
    won, the median time to a manager's decision and the share submitted with a conflict, for
    a segment filter and channel kind, from `first` to `last` (the latest week with a snapshot
    when both are left out); weeks whose run did not count registrations are absent."""

    serializer_class = RegistrationFiguresSerializer

    @extend_schema(
        parameters=[RegistrationQuerySerializer],
        responses=RegistrationFiguresSerializer(many=True),
        operation_id="metrics_registrations_list",
    )
    def get(self, request: Request) -> Response:
        query = self.query(RegistrationQuerySerializer)
        weeks = query.get("weeks") or [self.week_of({})]
        segment = {key: query[key] for key in metrics.SEGMENT_KEYS if query.get(key)}

        def records() -> list[dict[str, object]]:
            rows = reports.registrations(
                weeks,
                channel_kind=query.get("channel_kind") or "",
                by_channel=query["by_channel"],
                **segment,
            )
            return [row._asdict() for row in rows]

        return self.page_of({**query, "weeks": weeks}, records)


class MetricsWeeksView(_SnapshotView):
    """The weeks that have a snapshot, oldest first."""

    serializer_class = WeekSerializer

    @extend_schema(responses=WeekSerializer(many=True), operation_id="metrics_weeks_list")
    def get(self, request: Request) -> Response:
        return self.page_of({}, lambda: [{"week": week} for week in reports.weeks()])


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
