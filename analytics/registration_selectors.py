"""The deal registrations a week's figures count (docs/metrics.md rule 18), read for the weekly
run as a frame (`analytics.registration_metrics`)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from analytics.registration_metrics import REGISTRATION_FRAME_COLUMNS
from partners.registration_models import DealRegistration, RegistrationStatus

_FIELDS = [
    "segment_region",
    "segment_vertical",
    "segment_size_band",
    "partner__channel_kind",
    "submitted_day",
    "decided_day",
    "submitted_at",
    "decided_at",
    "protected_from",
    "status",
    "auto_approved",
    "closed_on",
    "arrival_conflicts",
]


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def registrations_frame(
    first: date, last: date, *, registrations: QuerySet[Any] | None = None
) -> pd.DataFrame:
    """Every registration submitted, decided or won from `first` to `last` (days in the
    project's time zone), as `REGISTRATION_FRAME_COLUMNS`: its segment (its account's when it
    names one, else the one the partner gave) and its partner's channel kind, the days it was
    submitted and decided, the hours between, whether it was approved (at any time: it has a
    protection start) or rejected, automatically or not, the day it was won and the conflict
    codes it met on arrival (None when they were not checked on arrival). One query, of
    `registrations` when given (a migration's model of them)."""
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    source = DealRegistration.objects.all() if registrations is None else registrations
    rows = (
        source.filter(
            Q(submitted_at__gte=start, submitted_at__lt=end)
            | Q(decided_at__gte=start, decided_at__lt=end)
            | Q(status=RegistrationStatus.WON, closed_on__gte=first, closed_on__lte=last)
        )
        .annotate(
            segment_region=Coalesce("account__region__code", "region__code"),
            segment_vertical=Coalesce("account__vertical__code", "vertical__code"),
            segment_size_band=Coalesce("account__size_band", "size_band"),
            submitted_day=TruncDate("submitted_at"),
            decided_day=TruncDate("decided_at"),
        )
        .order_by("id")
        .values_list(*_FIELDS)
    )
    read = pd.DataFrame(list(rows), columns=_FIELDS)
    submitted_at = pd.to_datetime(read["submitted_at"], utc=True)
    decided_at = pd.to_datetime(read["decided_at"], utc=True)
    status = read["status"].astype(object)
    frame = pd.DataFrame(
        {
            "region": read["segment_region"],
            "vertical": read["segment_vertical"],
            "size_band": read["segment_size_band"],
            "channel_kind": read["partner__channel_kind"],
            "submitted_on": read["submitted_day"],
            "decided_on": read["decided_day"],
            "decision_hours": (decided_at - submitted_at).dt.total_seconds() / 3600.0,
            "approved": read["protected_from"].notna(),
            "rejected": status == RegistrationStatus.REJECTED,
            "auto_approved": read["auto_approved"].astype(bool),
            "won_on": read["closed_on"].where(status == RegistrationStatus.WON, None),
            "arrival_conflicts": read["arrival_conflicts"],
        }
    )
    return frame[REGISTRATION_FRAME_COLUMNS]
