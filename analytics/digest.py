"""The weekly leadership digest: the dashboard's headline figures for one final week, e-mailed to
the executives through the outbox (`crm.services.email_queue`).

A week's digest is sent once: the outbox rows of topic `digest:<week>` are the record, checked
and written in one transaction that holds the week's final run row (`select_for_update`), so
two senders of the same week cannot both pass the check. A copy sent to a test address
(`to=...`) uses another topic and neither counts nor is blocked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import TypedDict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Least
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from analytics import dashboard as board
from analytics import metrics, reports, revenue_board
from analytics.models import MetricsRun, RunStatus
from crm.models import OutboundEmail, Region, Vertical
from crm.roles import Role
from crm.services import email_queue
from partners.models import Agreement

logger = logging.getLogger(__name__)

MOVERS_LIMIT = 5
ENDING_LIST_LIMIT = 25


class Mover(TypedDict):
    """A region or vertical whose coverage changed, in ratios and as shown."""

    code: str
    coverage: float
    coverage_change: float
    penetration: float | None
    penetration_change: float | None
    coverage_shown: str
    change_shown: str


class NamedMover(Mover):
    name: str


class RevenueMover(TypedDict):
    """A region whose won revenue of the 52 weeks changed, in the reporting currency."""

    code: str
    won_change: Decimal
    won_shown: str
    change_shown: str


class NamedRevenueMover(RevenueMover):
    name: str


class HeadlineLine(TypedDict):
    label: str
    shown: str
    change_shown: str


class EndingAgreement(TypedDict):
    external_id: str
    partner: str
    end_date: date
    terminated: bool
    days_left: int


class DigestContent(TypedDict):
    week: str
    as_of: date
    final: bool
    previous_week: str
    headlines: list[HeadlineLine]
    movers_region: list[NamedMover]
    movers_vertical: list[NamedMover]
    ending: list[EndingAgreement]
    revenue_headlines: list[HeadlineLine]
    revenue_movers: list[NamedRevenueMover]
    registrations: list[HeadlineLine]
    ending_count: int
    ending_more: int
    today: date
    dashboard_url: str


class DigestNotReady(Exception):
    """The week has no final snapshot yet."""


class DigestAlreadySent(Exception):
    """The week's digest went out already."""


def digest_topic(week: str) -> str:
    return f"digest:{week}"


def dashboard_url(week: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}/dashboard/?{urlencode({'week': week})}"


def movers(week: str, dimension: str, limit: int = MOVERS_LIMIT) -> list[Mover]:
    """The `dimension` ("region" or "vertical") values whose coverage changed most since the
    previous week, in percentage points (rule 5: their rollups, summed then divided); values
    without a figure in either week are left out. One query."""
    prior = board.previous_week(week)
    figures: dict[str, dict[str, reports.SegmentFigures]] = {}
    for row in reports.rollup([prior, week], by=(dimension,)):
        figures.setdefault(getattr(row, dimension), {})[row.week] = row
    result: list[Mover] = []
    for code, by_week in figures.items():
        if week not in by_week or prior not in by_week:
            continue
        now, before = by_week[week], by_week[prior]
        coverage, coverage_before = now.coverage, before.coverage
        penetration, penetration_before = now.penetration, before.penetration
        if coverage is None or coverage_before is None:
            continue
        change = coverage - coverage_before
        result.append(
            {
                "code": code,
                "coverage": coverage,
                "coverage_change": change,
                "penetration": penetration,
                "penetration_change": (
                    None
                    if penetration is None or penetration_before is None
                    else penetration - penetration_before
                ),
                "coverage_shown": board.show_ratio(coverage),
                "change_shown": board.show_change(change, "ratio"),
            }
        )
    result.sort(key=lambda r: (-abs(r["coverage_change"]), r["code"]))
    return [r for r in result if r["coverage_change"]][:limit]


def revenue_movers(week: str, limit: int = MOVERS_LIMIT) -> list[RevenueMover]:
    """The regions whose won revenue of the 52 weeks (rule 13, all channels) changed most
    since the previous week, in the reporting currency; unchanged regions left out. One
    query, and none when the previous week has no snapshot to compare with."""
    prior = board.previous_week(week)
    if not reports.has_week(prior):
        return []
    figures: dict[str, dict[str, reports.RevenueFigures]] = {}
    for row in reports.revenue_rollup([prior, week], by=("region",)):
        figures.setdefault(row.region, {})[row.week] = row
    result: list[RevenueMover] = []
    for code, by_week in figures.items():
        now, before = by_week.get(week), by_week.get(prior)
        won = now.won_amount if now else Decimal(0)
        change = won - (before.won_amount if before else Decimal(0))
        if change:
            result.append(
                {
                    "code": code,
                    "won_change": change,
                    "won_shown": revenue_board.show_money(won),
                    "change_shown": revenue_board.show_money_change(change),
                }
            )
    result.sort(key=lambda r: (-abs(r["won_change"]), r["code"]))
    return result[:limit]


def digest_content(*, week: str, today: date | None = None) -> DigestContent:
    """What the digest of `week` says, for the e-mail and its preview: headline figures with
    their changes, movers by region and by vertical, the revenue headlines and the regions whose
    won revenue moved most, agreements ending within 90 days of the
    week's as-of date (how many, the first ENDING_LIST_LIMIT listed, each with its days left
    counted from `today`, the day it is read), the week's deal registrations (rule 18) and the
    dashboard link. Figures are the
    dashboard's with no filter. Raises DigestNotReady when the week has no snapshot at all."""
    today = today or timezone.localdate()
    options = reports.week_options()
    by_week = {o.week: o for o in options}
    if week not in by_week:
        raise DigestNotReady(_("There is no snapshot for %(week)s yet.") % {"week": week})
    filters = board.Filters(week=week, span=board.SPANS[0])
    # Executives see every agreement (partners.selectors.agreements_visible_to), and the digest
    # goes to executives only.
    agreements = Agreement.objects.all()
    report = board.week_report(filters=filters, options=options, agreements=agreements)
    headlines: list[HeadlineLine] = [
        {
            "label": str(board.HEADLINE_LABELS[h.key]),
            "shown": board.show_value(h.value, h.kind),
            "change_shown": board.show_change(h.change, h.kind),
        }
        for h in report["headlines"]
    ]
    as_of = by_week[week].as_of
    ending_all = board.agreements_ending(agreements, filters, as_of)
    ending_count = ending_all.count()
    ending = (
        ending_all.select_related("partner")
        .annotate(ends=Least(F("end_date"), Coalesce(F("terminated_on"), F("end_date"))))
        .order_by("ends", "external_id")[:ENDING_LIST_LIMIT]
    )
    return {
        "week": week,
        "as_of": as_of,
        "final": by_week[week].final,
        "previous_week": report["previous_week"],
        "headlines": headlines,
        "movers_region": _named(movers(week, "region"), Region),
        "movers_vertical": _named(movers(week, "vertical"), Vertical),
        "revenue_headlines": [
            {"label": str(h["label"]), "shown": h["shown"], "change_shown": h["change_shown"]}
            for h in revenue_board.revenue_report(filters=filters, chosen=by_week[week])[
                "headlines"
            ]
        ],
        "revenue_movers": _named_revenue(revenue_movers(week)),
        "ending": [
            {
                "external_id": a.external_id,
                "partner": a.partner.name,
                "end_date": a.effective_end,
                "terminated": a.terminated_on is not None,
                "days_left": (a.effective_end - today).days,
            }
            for a in ending
        ],
        "registrations": [
            {
                "label": str(row["label"]),
                "shown": row["shown"],
                "change_shown": row["change_shown"],
            }
            for row in board.registration_rows(report)
        ]
        if report["registrations"]["current"] is not None
        else [],
        "ending_count": ending_count,
        "ending_more": ending_count - len(ending),
        "today": today,
        "dashboard_url": dashboard_url(week),
    }


def _display_names(codes: list[str], model: type[Region] | type[Vertical]) -> dict[str, str]:
    """The display name of each code (one query); a code without a row keeps itself."""
    names = {item.code: item.display_name for item in model.objects.filter(code__in=codes)}
    return {code: names.get(code, code) for code in codes}


def _named(rows: list[Mover], model: type[Region] | type[Vertical]) -> list[NamedMover]:
    names = _display_names([r["code"] for r in rows], model)
    return [{**row, "name": names[row["code"]]} for row in rows]


def _named_revenue(rows: list[RevenueMover]) -> list[NamedRevenueMover]:
    names = _display_names([r["code"] for r in rows], Region)
    return [{**row, "name": names[row["code"]]} for row in rows]


def digest_recipients() -> list[str]:
    """E-mail addresses of the active executives, sorted, without blanks or duplicates."""
    addresses = (
        get_user_model()
        .objects.filter(groups__name=Role.EXECUTIVE.value, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    return sorted(set(addresses))


def _render(content: DigestContent) -> tuple[str, str, str]:
    subject = _("Weekly coverage digest, %(week)s") % {"week": content["week"]}
    text = render_to_string("emails/digest.txt", {"digest": content})
    html = render_to_string("emails/digest.html", {"digest": content})
    return subject, text, html


def digest_send(*, week: str, to: Sequence[str] | None = None) -> list[OutboundEmail]:
    """Queue the digest of `week` ("2026-W46"): one e-mail per active executive, or one to the
    addresses in `to` (a test send that may repeat and does not count as the week's digest).

    Returns the queued outbox rows (empty when there is nobody to send to). Raises ValueError
    on a malformed week, DigestNotReady when the week's final snapshot does not exist yet, and
    DigestAlreadySent when the week's digest was queued before.
    """
    metrics.iso_week_as_of(week)
    with translation.override(settings.LANGUAGE_CODE), transaction.atomic():
        final_run = (
            MetricsRun.objects.select_for_update()
            .filter(week=week, final=True, status=RunStatus.SUCCEEDED)
            .order_by("-finished_at")
            .first()
        )
        if final_run is None or not reports.has_week(week, final=True):
            raise DigestNotReady(
                _("%(week)s has no final snapshot yet; the digest goes out once it is closed.")
                % {"week": week}
            )
        if to is None and OutboundEmail.objects.filter(topic=digest_topic(week)).exists():
            raise DigestAlreadySent(_("The digest of %(week)s was already sent.") % {"week": week})
        subject, text, html = _render(digest_content(week=week))
        if to is not None:
            email = email_queue(
                to=list(to),
                subject=subject,
                body_text=text,
                body_html=html,
                topic=f"digest-test:{week}",
            )
            return [email] if email else []
        sent = []
        for address in digest_recipients():
            email = email_queue(
                to=[address],
                subject=subject,
                body_text=text,
                body_html=html,
                topic=digest_topic(week),
            )
            if email:
                sent.append(email)
        logger.info("digest %s queued for %d executives", week, len(sent))
        return sent
