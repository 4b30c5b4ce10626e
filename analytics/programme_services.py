"""The weekly programme step: after a week's metrics are written, each partner's programme
figures, its tier (evaluated on closed weeks), the target attainment of partners and reps, and
the week's satisfaction regression (docs/metrics.md rules 20-23).

It reads the week's partner figures through `analytics.reports` and the programme's own counts
through `analytics.programme_selectors`, computes with `analytics.programme`, records tier
changes through `partners.programme_services.partner_tiers_record`, and replaces the week's
programme rows in one transaction, so running a week twice gives the same rows and the same
tier history.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Model
from django.utils import timezone
from psycopg import sql

from analytics import metrics, programme, programme_selectors, reports
from analytics.programme_models import (
    PartnerProgramme,
    RepProgramme,
    SatisfactionDriver,
    SatisfactionFit,
)
from analytics.routers import primary_reads
from analytics.writes import (
    Column,
    Rows,
    insert_objects,
    insert_rows,
    replace_weeks_rows,
    rewrite_week_rows,
)
from crm.currencies import MissingRate, RateTable
from crm.selectors import rate_table
from crm.sql import COPY_NULL, copy_text, copy_texts
from partners.programme_models import REQUIREMENT_KEYS, REQUIREMENTS, Tier
from partners.programme_services import (
    TierDecision,
    partner_tiers_before,
    partner_tiers_record,
    programme_settings,
)

logger = logging.getLogger(__name__)

REQUIREMENT_LABELS = {r.key: str(r.label) for r in REQUIREMENTS}


def tier_rules() -> list[programme.TierRule]:
    """The programme's tiers as the evaluation reads them, lowest rank first."""
    rules = []
    for tier in Tier.objects.order_by("rank"):
        minimums = {
            r.key: float(value)
            for r in REQUIREMENTS
            if (value := getattr(tier, r.field)) is not None
        }
        rules.append(programme.TierRule(tier.code, tier.rank, minimums))
    return rules


ZERO = Decimal("0.00")


@dataclass(frozen=True)
class WeekRevenue:
    """The programme's revenue of a week (rules 20 and 22): the revenue partners and reps
    sourced since 1 January, and the revenue targets partners take from their agreements."""

    sourced: programme_selectors.SourcedRevenue
    agreement_targets: dict[int, Decimal]


def week_revenue(
    week: str,
    d: date,
    *,
    known: bool,
    sourced: programme_selectors.SourcedRevenue | None = None,
    rates: RateTable | None = None,
    agreement_targets: dict[int, Decimal] | MissingRate | None = None,
) -> WeekRevenue | None:
    """The week's programme revenue; none when the week's revenue figures are not `known`
    (the weekly run met a missing rate) or a rate is missing here (rule 10: a missing rate is
    never taken as 0, and the other figures are kept). `sourced`: the revenue sourced since
    1 January as the week's revenue step found it; `rates` and `agreement_targets`: the rate
    table and `programme_selectors.agreement_revenue_targets` of `d` when read already (the
    missing rate it met, if it met one); each read here when none."""
    if not known:
        return None
    rates = rate_table() if rates is None else rates
    try:
        if sourced is None:
            sourced = programme_selectors.sourced_revenue_since(programme.year_start(d), d, rates)
        if agreement_targets is None:
            agreement_targets = programme_selectors.agreement_revenue_targets(d, rates)
        if isinstance(agreement_targets, MissingRate):
            raise agreement_targets
        return WeekRevenue(sourced, agreement_targets)
    except MissingRate as missing:
        logger.warning("programme %s: no revenue figures: %s", week, missing)
        return None


def _money(values: list[Decimal | None], frame: pd.DataFrame) -> pd.Series:
    """Amounts as a column of `frame`, kept exact (Decimals, not floats)."""
    return pd.Series(values, index=frame.index, dtype=object)


def previous_week(week: str) -> str:
    return metrics.iso_week_of(metrics.iso_week_as_of(week) - timedelta(days=7))


def _aligned(ids: pd.Index, keys: Any, values: Any, *, missing: Any, dtype: Any) -> np.ndarray:
    """`values` (one per key of `keys`) placed on the rows of `ids`; `missing` where a
    partner has none."""
    return _Placement.of(ids, keys).place(values, missing=missing, dtype=dtype)


@dataclass(frozen=True)
class _Placement:
    """Where the rows of a source keyed by partner go among the rows of `ids`: found once for
    the source's keys, then used for each of its columns."""

    size: int
    rows: np.ndarray  # the rows of `ids` that have a key
    found: np.ndarray  # which keys are among `ids`

    @classmethod
    def of(cls, ids: pd.Index, keys: Any) -> _Placement:
        position = ids.get_indexer(pd.Index(np.asarray(keys, dtype="int64")))
        found = position >= 0
        return cls(len(ids), position[found], found)

    def place(self, values: Any, *, missing: Any, dtype: Any) -> np.ndarray:
        placed = np.full(self.size, missing, dtype=dtype)
        if len(self.found):
            placed[self.rows] = np.asarray(values, dtype=dtype)[self.found]
        return placed


def _figures_frame(
    week: str,
    d: date,
    counts: programme_selectors.ConversionCounts,
    revenue: WeekRevenue | None,
    entries: pd.DataFrame | None = None,
    partners: pd.DataFrame | None = None,
    reads: DayReads | None = None,
) -> pd.DataFrame:
    """Every active partner with rule 6's figures of the week and the programme's counts
    (rule 20), one row each in `partner_id` order, the requirement figures under
    `REQUIREMENT_KEYS`. Its sourced revenue is none when the week has no revenue figures
    (`revenue` None); its feedback categories counted from `entries` (the week's feedback
    frame) when given; rule 6's figures taken from `partners` (the week's partner figures,
    `metrics.PARTNER_COLUMNS`, as its snapshot was written from them) when given, else read
    from the snapshot; the partners' own figures and the replies to their feedback taken
    from `reads` (read on `d`) when given. Each source is placed on the partners' rows by
    position, over arrays, and the frame is made once from them."""
    inputs = programme_selectors.partner_inputs(d) if reads is None else reads.partners
    active = inputs["is_active"].to_numpy(dtype=bool)
    columns: dict[str, Any] = {
        column: inputs[column].to_numpy()[active] for column in inputs.columns
    }
    # The selector lists the partners in id order.
    ids = pd.Index(columns["partner_id"].astype("int64"))
    columns["partner_id"] = ids.to_numpy()

    figures: list[Any]
    if partners is None:
        snapshot = reports.partner_requirement_figures(week)
        figures = list(zip(*snapshot, strict=True)) if snapshot else [()] * 4
    else:
        # The figures the week's snapshot was written from, as arrays (NaN where it wrote none).
        figures = [
            partners[column].to_numpy()
            for column in ("partner_id", "covered_accounts", "satisfaction_mean", "nps")
        ]
    snapshot_ids, covered, satisfaction, nps = figures
    in_snapshot = _Placement.of(ids, snapshot_ids)
    columns["covered_accounts"] = in_snapshot.place(covered, missing=0, dtype="int64")
    # A partner without scored feedback has no satisfaction (None from the database: NaN).
    columns["satisfaction"] = in_snapshot.place(satisfaction, missing=np.nan, dtype="float64")
    columns["nps"] = in_snapshot.place(nps, missing=np.nan, dtype="float64")

    converted = counts.partners
    with_conversions = _Placement.of(ids, converted["partner_id"].to_numpy())
    for column in ("conversions", "conversions_ytd"):
        columns[column] = with_conversions.place(
            converted[column].to_numpy(), missing=0, dtype="int64"
        )
    if revenue is None:
        columns["sourced_revenue"] = np.full(len(ids), None, dtype=object)
        columns["sourced_revenue_ytd"] = np.full(len(ids), None, dtype=object)
    else:
        # A partner without a revenue row, or without a deal won this year, sourced nothing.
        in_52_weeks = reports.partner_sourced_revenue(week)
        for column, sourced in (
            ("sourced_revenue", in_52_weeks),
            ("sourced_revenue_ytd", revenue.sourced.partners),
        ):
            columns[column] = _aligned(
                ids, list(sourced), list(sourced.values()), missing=ZERO, dtype=object
            )

    feedback = programme_selectors.feedback_inputs(
        d, entries, None if reads is None else reads.replies
    )
    with_feedback = _Placement.of(ids, feedback["partner_id"].to_numpy())
    # A partner without feedback in the 90 days has none of any category.
    columns["response_days"] = with_feedback.place(
        feedback["response_days"].to_numpy(), missing=np.nan, dtype="float64"
    )
    for column in programme.FEEDBACK_COUNT_COLUMNS.values():
        columns[column] = with_feedback.place(feedback[column].to_numpy(), missing=0, dtype="int64")
    return pd.DataFrame(columns)


def _requirement_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The requirement figures (`REQUIREMENT_KEYS`) as floats, NaN where missing: a numeric
    column as it is, money (Decimals, None where missing) converted."""
    return pd.DataFrame(
        {
            key: (
                frame[key].to_numpy(dtype="float64")
                if frame[key].dtype.kind in "iuf"
                else pd.to_numeric(frame[key], errors="coerce").to_numpy(dtype="float64")
            )
            for key in REQUIREMENT_KEYS
        }
    )


def _evidence(
    week: str,
    d: date,
    figures: dict[str, Any],
    tier: programme.TierRule | None,
    weeks_below: int,
    grace: int,
) -> dict[str, Any]:
    return {
        "week": week,
        "as_of": d.isoformat(),
        "figures": figures,
        "tier": tier.code if tier else "",
        "requirements": programme.requirement_checks(figures, tier) if tier else [],
        "weeks_below": weeks_below,
        "grace_weeks": grace,
    }


def _reason(
    checks: list[programme.RequirementCheck], *, up: bool, name: str, weeks: int, grace: int
) -> str:
    if up:
        return f"Met every requirement of {name}."
    missed = "; ".join(
        f"{REQUIREMENT_LABELS[c['key']]} {_shown(c['value'])} < {_shown(c['minimum'])}"
        for c in checks
        if not c["met"]
    )
    return f"Below the requirements of {name} for {weeks} closed weeks (grace {grace}): {missed}."


def _shown(value: float | None) -> str:
    if value is None:
        return "none"
    return f"{value:g}"


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, Decimal)):
        return float(value)
    return value


@dataclass(frozen=True)
class DayReads:
    """What the programme step of a day reads besides the week's figures and tiers, as of the
    day: the partners' own figures (`programme_selectors.partner_inputs`, each partner's tier
    as it was when read) and the first replies to the feedback of its 90 days
    (`programme_selectors.first_replies`)."""

    partners: pd.DataFrame
    replies: np.ndarray


def programme_day_reads(days: Sequence[date]) -> dict[date, DayReads]:
    """`DayReads` of each of `days` (a backfill's), each source read once for all of them."""
    partners = programme_selectors.partner_inputs_of_days(days)
    replies = programme_selectors.first_replies_of_days(days)
    return {day: DayReads(partners[day], replies[day]) for day in days}


@dataclass(frozen=True)
class ProgrammeWeek:
    """A week for the programme step, whose metrics snapshot (as of `as_of`, final or
    provisional) is already written. `revenue` false: the week's snapshot has no revenue
    figures (a missing rate), so the programme's revenue figures are none too. `counts`: the
    conversions and reps' covered accounts of `as_of` as the week's pass found them (read
    when none), and the feedback it read, whose categories are counted rather than read
    again; `sourced`: the revenue partners and reps sourced since 1 January as the week's
    revenue step found it (read when none); `partners`: the week's partner figures
    (`metrics.PARTNER_COLUMNS`) its snapshot was written from (read from the snapshot when
    none); `reads`: what the step reads beside the week's figures, read ahead on `as_of`
    (`programme_read_ahead`; read in the step when none); `day_reads`: the partners' own
    figures and the replies of `as_of` read before the first of several weeks is evaluated
    (`programme_day_reads`; the tiers they hold are those of the partners before it)."""

    week: str
    as_of: date
    final: bool
    revenue: bool = True
    counts: metrics.ProgrammeCounts | None = None
    sourced: programme_selectors.SourcedRevenue | None = None
    partners: pd.DataFrame | None = None
    reads: ProgrammeReads | None = None
    day_reads: DayReads | None = None


@dataclass(frozen=True)
class Programme:
    """What every week's evaluation reads alike: the tiers, lowest rank first, and the
    downgrade grace period (rule 21)."""

    rules: list[programme.TierRule]
    grace: int
    # Each year's targets, read once for the weeks of that year.
    yearly_targets: dict[int, pd.DataFrame] = dataclasses.field(default_factory=dict)

    @classmethod
    def now(cls) -> Programme:
        return cls(tier_rules(), programme_settings().downgrade_grace_weeks)

    def targets(self, year: int) -> pd.DataFrame:
        """The yearly targets of `year` (`programme_selectors.targets`)."""
        if year not in self.yearly_targets:
            self.yearly_targets[year] = programme_selectors.targets(year)
        return self.yearly_targets[year]


@dataclass(frozen=True)
class ProgrammeReads:
    """What the programme step of `week` as of `as_of` reads that the week's pass does not:
    the programme's tiers, grace period and the targets of the day's year (`programme`),
    each partner's own figures (`programme_selectors.partner_inputs`), the first replies to
    the feedback of the 90 days (`programme_selectors.first_replies`), the rate table and
    the agreements' revenue targets (`week_revenue`'s), each active partner's tier when the
    week's evaluation starts (`partner_tiers_before`), its closed weeks below its tier as
    of the week before (`reports.programme_weeks_below`), and the week's programme rows as a
    run before wrote them (`week_rows`). None of it depends on the week's rows being
    computed, so it can be read while they are; the week's programme rows are written only
    by the week's runs, one at a time under the week's lock, so they are still those read when
    the step writes its own."""

    week: str
    as_of: date
    programme: Programme
    partners: pd.DataFrame
    replies: np.ndarray
    rates: RateTable
    agreement_targets: dict[int, Decimal] | MissingRate
    tiers_before: dict[int, str]
    weeks_below: dict[int, int]
    # The week's partner rows as stored (`reports.programme_week_rows`), which the step's
    # rows are compared with before they are written (`_rewrite_partner_rows`).
    week_rows: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @classmethod
    def on(cls, week: str, as_of: date) -> ProgrammeReads:
        programme_now = Programme.now()
        programme_now.targets(as_of.year)
        partners = programme_selectors.partner_inputs(as_of)
        active = partners[partners["is_active"].to_numpy(dtype=bool)]
        rates = rate_table()
        agreement_targets: dict[int, Decimal] | MissingRate
        try:
            agreement_targets = programme_selectors.agreement_revenue_targets(as_of, rates)
        except MissingRate as missing:
            agreement_targets = missing
        return cls(
            week,
            as_of,
            programme_now,
            partners,
            programme_selectors.first_replies(as_of),
            rates,
            agreement_targets,
            partner_tiers_before(
                week,
                now=dict(
                    zip(
                        active["partner_id"].tolist(),
                        active["current_tier"].tolist(),
                        strict=True,
                    )
                ),
            ),
            reports.programme_weeks_below(previous_week(week)),
            reports.programme_week_rows(week, PARTNER_PROGRAMME_FIELDS),
        )


def _reads_on_own_connection(week: str, as_of: date) -> ProgrammeReads:
    """`ProgrammeReads.on(week, as_of)` on this thread's own connection, closed afterwards;
    the programme rows of the week before read on the primary, as the run's own reads are
    (`analytics.routers.primary_reads`: a thread does not inherit the run's)."""
    try:
        with primary_reads():
            return ProgrammeReads.on(week, as_of)
    finally:
        connection.close()


@contextmanager
def programme_read_ahead(week: str, as_of: date) -> Iterator[Callable[[], ProgrammeReads | None]]:
    """Start reading `ProgrammeReads.on(week, as_of)` now, on a connection of its own, when
    it can be (PostgreSQL, no transaction open, parallel reads on): the caller goes on while
    the database reads them, and the programme step that follows does not wait for them
    (profiled on the 1M market at load 2-3: about 55 ms of the step's 280 ms, 32 ms of it the
    partners' own figures). Gives a function that returns the reads (None when they are not
    read ahead: the step reads them itself); leaving waits for them. The reads are in a
    snapshot of their own, taken when this is entered."""
    if (
        connection.vendor != "postgresql"
        or connection.in_atomic_block
        or not settings.METRICS_PARALLEL_READ
    ):
        yield lambda: None
        return
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_reads_on_own_connection, week, as_of)
        yield pending.result


@dataclass(frozen=True)
class WeekProgramme:
    """A week's evaluation, before it is written: its partner rows (`partner_rows`, with
    `week`) and rep rows (`rep_rows`, with `week`, `as_of` and `final`), its tier changes
    (recorded by then when the week is final), the regression and its inputs, and each
    partner's closed weeks below its tier (the next week's evaluation starts from them)."""

    week: ProgrammeWeek
    partner_rows: pd.DataFrame
    rep_rows: pd.DataFrame
    decisions: list[TierDecision]
    drivers: programme.DriverFit
    driver_inputs: pd.DataFrame
    weeks_below: dict[int, int]


def programme_week(
    *,
    week: str,
    as_of: date,
    final: bool,
    revenue: bool = True,
    counts: metrics.ProgrammeCounts | None = None,
    sourced: programme_selectors.SourcedRevenue | None = None,
    partners: pd.DataFrame | None = None,
    reads: ProgrammeReads | None = None,
) -> int:
    """The programme step of `week` (`ProgrammeWeek` says what each argument is): evaluate
    tiers (closed weeks only; rule 21), compute the attainment of every yearly target of the
    week's year (rule 22) and fit the week's satisfaction regression (rule 23), then replace
    the week's programme rows in one transaction. Returns the number of rows written."""
    weeks = [ProgrammeWeek(week, as_of, final, revenue, counts, sourced, partners, reads)]
    return programme_compute_weeks(weeks=weeks)[week]


def programme_compute_weeks(
    *,
    weeks: Sequence[ProgrammeWeek],
    evaluating: Callable[[str], object] | None = None,
) -> dict[str, int]:
    """The programme steps of `weeks`, in their order, in one transaction: each week is
    evaluated as `programme_week` evaluates it alone after the weeks before it (its tiers
    start from theirs: its tier changes are recorded before the next week is evaluated, and
    each partner's weeks below its tier are handed on in memory), then the rows of all the
    weeks replace theirs (on PostgreSQL the partners' rows rewritten in place week by week,
    every other table's in one COPY). `evaluating` is called
    with each week before it is evaluated. Returns the rows written per week."""
    if not weeks:
        return {}
    read_ahead = [each.reads for each in weeks if each.reads is not None]
    settings_now = read_ahead[0].programme if read_ahead else Programme.now()
    evaluated: list[WeekProgramme] = []
    below: dict[str, dict[int, int]] = {}
    # The partners whose tier the weeks evaluated so far changed, with the tier they hold.
    moved: dict[int, str] = {}
    with transaction.atomic():
        for each in weeks:
            if evaluating is not None:
                evaluating(each.week)
            before = below.get(previous_week(each.week))
            outcome = week_programme(
                each, settings_now, weeks_below_before=before, tiers_moved=moved
            )
            if each.final:
                moved |= partner_tiers_record(
                    week=each.week, as_of=each.as_of, decisions=outcome.decisions
                )
            below[each.week] = outcome.weeks_below
            evaluated.append(outcome)
        _write_weeks(evaluated)
    written = {}
    for outcome in evaluated:
        drivers = outcome.drivers
        logger.info(
            "programme %s: %d partners, %d tier changes, %d reps, drivers %s (n=%d)",
            outcome.week.week,
            len(outcome.partner_rows),
            len(outcome.decisions) if outcome.week.final else 0,
            len(outcome.rep_rows),
            drivers.status,
            drivers.observations,
        )
        written[outcome.week.week] = (
            len(outcome.partner_rows) + len(outcome.rep_rows) + 1 + len(drivers.coefficients)
        )
    return written


def week_programme(
    each: ProgrammeWeek,
    settings_now: Programme,
    *,
    weeks_below_before: dict[int, int] | None = None,
    tiers_moved: Mapping[int, str] | None = None,
) -> WeekProgramme:
    """Evaluate one week (rules 20-23) without writing it. `weeks_below_before`: each
    partner's closed weeks below its tier as of the week before (read from that week's rows
    when none). `tiers_moved`: the partners whose tier changed since `each.day_reads` were
    read, with the tier they hold now."""
    week, as_of, final = each.week, each.as_of, each.final
    rules, grace = settings_now.rules, settings_now.grace
    by_code = {rule.code: rule for rule in rules}
    counts = each.counts
    if counts is None:
        converted = programme_selectors.conversions(as_of)
        rep_covered = None
    else:
        converted = programme_selectors.ConversionCounts(
            counts.partners, counts.reps[["rep_id", "conversions_ytd"]]
        )
        rep_covered = dict(
            zip(
                counts.reps["rep_id"].tolist(),
                counts.reps["covered_accounts"].tolist(),
                strict=True,
            )
        )
    reads = each.reads
    if reads is not None and (reads.week, reads.as_of) != (week, as_of):
        reads = None
    money = week_revenue(
        week,
        as_of,
        known=each.revenue,
        sourced=each.sourced,
        rates=None if reads is None else reads.rates,
        agreement_targets=None if reads is None else reads.agreement_targets,
    )
    targets = settings_now.targets(as_of.year)
    frame = _figures_frame(
        week,
        as_of,
        converted,
        money,
        None if counts is None else counts.feedback,
        each.partners,
        each.day_reads if reads is None else DayReads(reads.partners, reads.replies),
    )
    requirement_values = _requirement_values(frame)

    partner_ids = frame["partner_id"].to_numpy()
    ids = pd.Index(partner_ids)
    if reads is None:
        now = dict(zip(partner_ids.tolist(), frame["current_tier"].tolist(), strict=True))
        if each.day_reads is not None and tiers_moved:
            now |= {key: tier for key, tier in tiers_moved.items() if key in now}
        before = partner_tiers_before(week, now=now)
    else:
        before = reads.tiers_before
    held_before = _aligned(
        ids, list(before), list(before.values()), missing="", dtype=object
    ).tolist()
    if weeks_below_before is None:
        weeks_below_before = (
            reports.programme_weeks_below(previous_week(week))
            if reads is None
            else reads.weeks_below
        )
    below_before = _aligned(
        ids,
        list(weeks_below_before),
        list(weeks_below_before.values()),
        missing=0,
        dtype="int64",
    ).tolist()
    outcome = programme.tier_decisions(
        figures=requirement_values,
        tiers=rules,
        held_before=held_before,
        weeks_below_before=below_before,
        grace_weeks=grace,
        final=final,
    )

    decisions = []
    changed = np.flatnonzero(np.asarray(held_before, dtype=object) != outcome.held)
    # The tiers' names, for the reasons of the changes (most weeks change no tier).
    names = dict(Tier.objects.values_list("code", "name")) if len(changed) else {}
    for index in changed.tolist():
        partner_id = partner_ids[index]
        old, new = held_before[index], outcome.held[index]
        figures = {str(key): _plain(value) for key, value in requirement_values.iloc[index].items()}
        up = by_code.get(old) is None or by_code[new].rank > by_code[old].rank
        judged = by_code[new] if up else by_code.get(old)
        weeks = int(below_before[index]) + 1
        evidence = _evidence(week, as_of, figures, judged, weeks, grace)
        name = names.get(judged.code, judged.code) if judged else old
        decisions.append(
            TierDecision(
                partner_id=int(partner_id),
                from_tier=old,
                to_tier=str(new),
                evidence=evidence,
                reason=_reason(
                    evidence["requirements"], up=up, name=name, weeks=weeks, grace=grace
                ),
            )
        )

    partner_rows = _partner_rows(frame, outcome, held_before, as_of, money, targets)
    rep_rows = _rep_rows(as_of, converted.reps, money, targets, rep_covered)
    codes = pd.Index([rule.code for rule in rules], dtype=object)
    # A tier the programme does not define ranks 0.
    ranks = np.append(np.array([rule.rank for rule in rules], dtype="int64"), 0)
    drivers = programme.satisfaction_drivers(
        pd.DataFrame(
            {
                "partner_id": frame["partner_id"],
                "satisfaction": frame["satisfaction"],
                "tier_rank": ranks[codes.get_indexer(pd.Index(outcome.held, dtype=object))],
                "channel_kind": frame["channel_kind"],
                "tenure_years": partner_rows["tenure_years"],
                "covered_accounts": frame["covered_accounts"],
                "response_days": frame["response_days"],
                **{column: frame[column] for column in programme.FEEDBACK_COUNT_COLUMNS.values()},
            }
        )
    )
    below_now = outcome.weeks_below > 0
    return WeekProgramme(
        each,
        partner_rows[PARTNER_PROGRAMME_FIELDS].assign(week=week),
        _in_week(rep_rows[REP_PROGRAMME_FIELDS], each),
        decisions,
        drivers,
        _driver_inputs(frame, partner_rows["tenure_days"]),
        dict(
            zip(
                partner_ids[below_now].tolist(),
                outcome.weeks_below[below_now].tolist(),
                strict=True,
            )
        ),
    )


WEEK_FIELDS = ["week", "as_of", "final"]


def _in_week(rows: pd.DataFrame, each: ProgrammeWeek) -> pd.DataFrame:
    """`rows` with the week's `WEEK_FIELDS` as columns of their own."""
    return rows.assign(week=each.week, as_of=each.as_of, final=each.final)


def _driver_inputs(frame: pd.DataFrame, tenure_days: pd.Series) -> pd.DataFrame:
    """The regression's inputs of every partner of `frame`, in the frame's (id) order: its
    feedback per category, response time and tenure in whole days (its years are the days /
    365.25). Kept as arrays until the week is written (`_fit_inputs`)."""
    columns = ["partner_id", *programme.FEEDBACK_COUNT_COLUMNS.values(), "response_days"]
    return frame[columns].assign(tenure_days=tenure_days.to_numpy(dtype="int64"))


def _fit_inputs(inputs: pd.DataFrame) -> bytes:
    """`_driver_inputs` as the week's `SatisfactionFit` keeps them (`inputs`): numpy's archive
    of its columns (`.npz`), a missing response time as NaN, the counts and days as 32-bit
    integers. Made as each week is written: a backfill's weeks held at once took about
    100 MB more."""
    arrays = {"partner_id": inputs["partner_id"].to_numpy(dtype="int64")}
    for column in programme.FEEDBACK_COUNT_COLUMNS.values():
        arrays[column] = _int32(inputs[column].to_numpy(dtype="int64"))
    arrays["response_days"] = inputs["response_days"].to_numpy(dtype="float64")
    arrays["tenure_days"] = _int32(inputs["tenure_days"].to_numpy(dtype="int64"))
    archive = io.BytesIO()
    np.savez(archive, allow_pickle=False, **arrays)
    return archive.getvalue()


def _int32(values: np.ndarray) -> np.ndarray:
    if len(values) and (values.min() < -(2**31) or values.max() >= 2**31):
        raise ValueError("a regression input out of the range of 32-bit integers")
    return values.astype("int32")


def _write_weeks(evaluated: list[WeekProgramme]) -> None:
    """Replace the programme rows of the weeks `evaluated` with theirs (inside the caller's
    transaction): the partners' rows rewritten in place on PostgreSQL, week by week (only
    those that may have changed when the week's stored rows were read ahead:
    `_rewrite_partner_rows`; else `_replace_partner_rows`), every other table's rows of the
    weeks deleted and inserted."""
    weeks = [outcome.week.week for outcome in evaluated]
    rep_rows = _concatenated([outcome.rep_rows for outcome in evaluated])
    if connection.vendor == "postgresql":
        # The weeks whose stored rows were not read ahead, staged and replaced together.
        replaced: dict[str, pd.DataFrame] = {}
        for outcome in evaluated:
            reads = outcome.week.reads
            if reads is not None and (reads.week, reads.as_of) == (
                outcome.week.week,
                outcome.week.as_of,
            ):
                _rewrite_partner_rows(outcome.partner_rows, outcome.week.week, reads.week_rows)
            else:
                replaced[outcome.week.week] = outcome.partner_rows
        _replace_partner_rows(replaced)
    else:
        PartnerProgramme.objects.filter(week__in=weeks).delete()
        _write(PartnerProgramme, _concatenated([outcome.partner_rows for outcome in evaluated]))
    for model in (RepProgramme, SatisfactionDriver, SatisfactionFit):
        model._default_manager.filter(week__in=weeks).delete()
    _write(RepProgramme, rep_rows)
    # A week at a time: each week's inputs made as it is written (`_fit_inputs`).
    for outcome in evaluated:
        fit = SatisfactionFit(
            week=outcome.week.week,
            as_of=outcome.week.as_of,
            final=outcome.week.final,
            status=outcome.drivers.status,
            observations=outcome.drivers.observations,
            parameters=outcome.drivers.parameters,
            r_squared=outcome.drivers.r_squared,
            adjusted_r_squared=outcome.drivers.adjusted_r_squared,
            dropped=outcome.drivers.dropped,
            inputs=_fit_inputs(outcome.driver_inputs),
        )
        insert_objects(SatisfactionFit, [fit])
    SatisfactionDriver.objects.bulk_create(
        SatisfactionDriver(
            week=outcome.week.week, **{str(key): value for key, value in row.items()}
        )
        for outcome in evaluated
        for row in outcome.drivers.coefficients.to_dict(orient="records")
    )


def _concatenated(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """`frames` one after the other (the one frame itself when there is one)."""
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _partner_rows(
    frame: pd.DataFrame,
    outcome: programme.TierOutcome,
    held_before: list[str],
    d: date,
    revenue: WeekRevenue | None,
    targets: pd.DataFrame,
) -> pd.DataFrame:
    """`frame` with each partner's yearly target (none where it has none; the revenue target
    its agreements' when its own sets none, rule 22), tenure and the week's tier outcome
    (rule 21), the targets placed on the partners' rows over arrays."""
    ids = pd.Index(frame["partner_id"].to_numpy())
    partner_targets = targets[targets["partner_id"].notna()]
    with_target = _Placement.of(ids, partner_targets["partner_id"].to_numpy(dtype="int64"))
    columns: dict[str, Any] = {
        # Floats, NaN where the partner has no target (as a merge leaves a count column).
        f"target_{column}": with_target.place(
            partner_targets[column].to_numpy(dtype="float64", na_value=np.nan),
            missing=np.nan,
            dtype="float64",
        )
        for column in ("accounts_covered", "conversions")
    }
    own = with_target.place(partner_targets["revenue"].to_numpy(), missing=None, dtype=object)
    has_own = pd.notna(own)
    from_agreements = revenue.agreement_targets if revenue else {}
    agreed = _aligned(
        ids, list(from_agreements), list(from_agreements.values()), missing=None, dtype=object
    )
    has_agreed = pd.notna(agreed)
    columns["revenue_target_source"] = np.where(
        has_own, "target", np.where(has_agreed, "agreements", "")
    ).astype(object)
    columns["target_revenue"] = np.where(has_own, own, agreed)
    first = frame["first_signed"].to_numpy(dtype="datetime64[D]")
    signed = ~np.isnat(first)
    days = np.where(signed, (np.datetime64(d, "D") - first).astype("int64"), 0)
    # Whole days, kept with the regression's inputs; none before the first agreement.
    columns["tenure_days"] = np.maximum(days, 0)
    columns["tenure_years"] = columns["tenure_days"] / 365.25
    columns["tier_before"] = np.asarray(held_before, dtype=object)
    columns["qualified_tier"] = outcome.qualified
    columns["tier"] = outcome.held
    columns["weeks_below"] = outcome.weeks_below
    return frame.assign(**columns)


PARTNER_PROGRAMME_FIELDS = [
    "partner_id",
    "covered_accounts",
    "conversions",
    "conversions_ytd",
    "registrations_submitted",
    "registrations_won",
    "registrations_lost",
    "registrations_won_ytd",
    "sourced_revenue",
    "sourced_revenue_ytd",
    "certifications",
    "tier_before",
    "qualified_tier",
    "tier",
    "weeks_below",
    "target_accounts_covered",
    "target_conversions",
    "target_revenue",
    "revenue_target_source",
]
REP_PROGRAMME_FIELDS = [
    "rep_id",
    "external_id",
    "name",
    "covered_accounts",
    "conversions_ytd",
    "sourced_revenue_ytd",
    "target_accounts_covered",
    "target_conversions",
    "target_revenue",
]


def _rep_rows(
    d: date,
    converted: pd.DataFrame,
    revenue: WeekRevenue | None,
    targets: pd.DataFrame,
    covered: dict[int, int] | None = None,
) -> pd.DataFrame:
    """Every rep with a target in `d`'s year (`targets`, that year's): its figures on `d`
    and the target (rule 22); its sourced revenue none when the week has no revenue figures.
    `covered`: each rep's covered accounts when known (read here when none)."""
    rep_targets = targets[targets["rep_id"].notna()].copy()
    if rep_targets.empty:
        return pd.DataFrame(columns=REP_PROGRAMME_FIELDS)
    rep_targets["rep_id"] = rep_targets["rep_id"].astype("int64")
    rep_ids = [int(pk) for pk in rep_targets["rep_id"]]
    if covered is None:
        covered = programme_selectors.rep_covered_accounts(d, rep_ids)
    rows = rep_targets[
        ["rep_id", "external_id", "name", "accounts_covered", "conversions", "revenue"]
    ].reset_index(drop=True)
    # Each rep's figures placed on its row over arrays; a rep without any has 0.
    ids = pd.Index(rows["rep_id"].to_numpy())
    rows["conversions_ytd"] = _aligned(
        ids,
        converted["rep_id"].to_numpy(),
        converted["conversions_ytd"].to_numpy(),
        missing=0,
        dtype="int64",
    )
    rows["covered_accounts"] = _aligned(
        ids, list(covered), list(covered.values()), missing=0, dtype="int64"
    )
    rows["sourced_revenue_ytd"] = _money(
        [revenue.sourced.reps.get(int(pk), ZERO) if revenue else None for pk in rows["rep_id"]],
        rows,
    )
    return rows.rename(
        columns={
            "accounts_covered": "target_accounts_covered",
            "conversions": "target_conversions",
            "revenue": "target_revenue",
        }
    )[REP_PROGRAMME_FIELDS]


def _column(values: pd.Series) -> list[Any]:
    """A column as plain Python values (NaN as None); money stays exact (Decimals)."""
    if values.dtype.kind in "iub":
        return list(values.tolist())
    plain = values.astype(object).where(values.notna(), None).tolist()
    if values.dtype.kind == "f":
        return list(plain)
    # Text, money and the like as they are; a number pandas left as numpy's becomes Python's.
    return [v.item() if isinstance(v, np.generic) else v for v in plain]


def _write(model: type[Model], frame: pd.DataFrame) -> None:
    """Insert `frame`'s rows of `model` (their fields and the week's, `_week_fields`): one
    COPY on PostgreSQL, its text built column by column over arrays (`_copy_column`);
    `bulk_create` elsewhere (`writes.insert_rows`)."""
    fields = PARTNER_PROGRAMME_FIELDS if model is PartnerProgramme else REP_PROGRAMME_FIELDS
    if connection.vendor == "postgresql":
        _copy(model, frame)
        return
    columns = {field: _column(frame[field]) for field in [*fields, *_week_fields(model)]}
    for field in fields:
        # A count column that met a blank in a merge comes back as floats (4.0).
        if isinstance(model._meta.get_field(field), models.IntegerField):
            columns[field] = [int(v) if isinstance(v, float) else v for v in columns[field]]
    insert_rows(model, Rows(columns, len(frame)))


def _week_fields(model: type[Model]) -> list[str]:
    """The week's fields a row of `model` holds: a partner row only its week (the week's
    `SatisfactionFit` holds the rest), a rep row `WEEK_FIELDS`."""
    return ["week"] if model is PartnerProgramme else WEEK_FIELDS


def _replace_partner_rows(frames: Mapping[str, pd.DataFrame]) -> None:
    """PostgreSQL: make the partner programme rows of each week of `frames` (week → its rows)
    the week's frame's (`writes.replace_weeks_rows`): the row each partner already has in the
    week (a week is run again every night until it closes) rewritten in place when its
    figures changed, the rows of partners new to the week added and those of partners no
    longer in it deleted; the money staged as text and read by the database as it reads text.
    Several weeks (a backfill's) are staged together and replaced in one statement each for
    all of them, not five a week."""
    replace_weeks_rows(
        PartnerProgramme,
        {week: _binary_rows(frame) for week, frame in frames.items()},
        staged_as=_STAGED_AS,
    )


def _rewrite_partner_rows(frame: pd.DataFrame, week: str, stored: dict[str, np.ndarray]) -> None:
    """PostgreSQL: make the partner programme rows of `week` `frame`'s, as
    `_replace_partner_rows` does, knowing the rows the week holds (`stored`, read before the
    step: `ProgrammeReads.week_rows`). The rows whose figures may differ from their stored
    row's (`_unchanged`) and those of partners new to the week are sent, with the partners no
    longer in it, in one statement (`writes.rewrite_week_rows`): a night's run changes a few
    hundred of 10,000 rows, and staging them all to compare them in the database cost more
    than the rest of the step. A week without rows, or one where many rows changed, is
    staged whole (`_replace_partner_rows`)."""
    stored_ids = np.asarray(stored.get("partner_id", []), dtype="int64")
    if not len(stored_ids):
        _replace_partner_rows({week: frame})
        return
    ids = frame["partner_id"].to_numpy(dtype="int64")
    position = pd.Index(stored_ids).get_indexer(ids)
    held = position >= 0
    sent = ~held
    sent[held] = ~_unchanged(frame[held], stored, position[held])
    if int(sent.sum()) > REWRITTEN_ROWS_AT_MOST:
        _replace_partner_rows({week: frame})
        return
    # The stored rows no partner of the week matched.
    matched = np.zeros(len(stored_ids), dtype=bool)
    matched[position[held]] = True
    gone = stored_ids[~matched]
    if not sent.any() and not len(gone):
        return
    rewrite_week_rows(
        PartnerProgramme,
        week,
        _binary_rows(frame[sent]),
        gone=gone.tolist(),
        staged_as=_STAGED_AS,
    )


# Beyond this many partner rows to rewrite or add, they go staged in a `COPY`: passed as
# arrays, each row costs more (about 13 µs against 4 µs, 1M market).
REWRITTEN_ROWS_AT_MOST = 2_000


def _unchanged(
    frame: pd.DataFrame, stored: dict[str, np.ndarray], position: np.ndarray
) -> np.ndarray:
    """Per row of `frame`, whether each of its `PARTNER_PROGRAMME_FIELDS` equals that of its
    stored row (at `position` in `stored`'s columns, `reports.programme_week_rows`). Equal
    only where the database finds it equal too, so that no row it would rewrite is left out:
    numbers by value (a blank equal to a blank), anything else (text, money) by Python's
    equality, a blank (None) only to a blank; the database then rewrites only the rows that
    differ (`writes.rewrite_week_rows`)."""
    same = np.ones(len(frame), dtype=bool)
    for name in PARTNER_PROGRAMME_FIELDS:
        if name == "partner_id":
            continue
        given, kept = frame[name].to_numpy(), stored[name][position]
        if given.dtype.kind in "iuf" and kept.dtype.kind == "f":
            values = given.astype("float64")
            same &= (values == kept) | (np.isnan(values) & np.isnan(kept))
        else:
            same &= np.asarray(given.astype(object) == kept.astype(object), dtype=bool)
    return same


# The partner rows' money columns, staged as text (`_replace_partner_rows`).
STAGED_AS_TEXT = frozenset(
    field.attname
    for field in PartnerProgramme._meta.concrete_fields
    if isinstance(field, models.DecimalField | models.JSONField)
)
_STAGED_AS = dict.fromkeys(STAGED_AS_TEXT, "text")


def _binary_rows(frame: pd.DataFrame) -> Rows:
    """`frame`'s partner rows (`PARTNER_PROGRAMME_FIELDS` and `week`) as the columns
    `writes.replace_week_rows` takes: arrays as they are, a count column that met a blank in a
    merge as floats (NaN for the blank), the money as its values (written as text)."""
    columns: dict[str, Column] = {}
    for name in [*PARTNER_PROGRAMME_FIELDS, "week"]:
        values = frame[name]
        field = PartnerProgramme._meta.get_field(name)
        if isinstance(field, models.IntegerField | models.ForeignKey) and values.dtype == object:
            # The weeks' counts put together, a week with a blank (floats) beside one without.
            columns[name] = pd.to_numeric(values).to_numpy(dtype="float64")
        else:
            columns[name] = values.to_numpy()
    return Rows(columns, len(frame))


def _copy(model: type[Model], frame: pd.DataFrame) -> None:
    """`frame`'s rows of `model` in one COPY: each column's text is made at once from its
    array (a value at a time cost more than the database's work of writing the rows), and the
    moment the rows are written as one text repeated."""
    if frame.empty:
        return
    now = copy_text(timezone.now())
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(model._meta.db_table),
        sql.SQL(", ").join(sql.Identifier(str(field.column)) for field in fields),
    )
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        # A week's rows at a time: the text of a backfill's half a million rows at once
        # held millions of strings.
        for start in range(0, len(frame), COPY_CHUNK_ROWS):
            chunk = frame.iloc[start : start + COPY_CHUNK_ROWS]
            texts = [
                [now] * len(chunk)
                if field.attname in {"created_at", "updated_at"}
                else _copy_column(
                    chunk[field.attname],
                    integer=isinstance(field, models.IntegerField | models.ForeignKey),
                )
                for field in fields
            ]
            copy.write("\n".join(map("\t".join, zip(*texts, strict=True))) + "\n")


COPY_CHUNK_ROWS = 10_000


def _copy_column(values: pd.Series, *, integer: bool) -> list[str]:
    """A column as COPY's text format writes it, one string per row, converted over the
    array: integers and booleans as such, floats by their shortest exact text (what `repr`
    gives), NaN as NULL; an `integer` column that met a blank in a merge (floats) as integers.
    Text and money (Decimals, a blank as None or NaN) by their type, anything else value by
    value (`crm.sql.copy_texts`)."""
    array = values.to_numpy()
    kind = array.dtype.kind
    if integer and kind == "O":
        # The weeks' counts put together, a week with a blank (floats) beside one without.
        array = pd.to_numeric(values).to_numpy(dtype="float64")
        kind = "f"
    if kind == "b":
        return list(np.where(array, "t", "f").tolist())
    if kind in "iu":
        return list(array.astype(str).tolist())
    if kind == "f":
        missing = np.isnan(array)
        if integer:
            shown = np.where(missing, 0, array).astype("int64").astype(str)
        else:
            shown = array.astype(str)
        return list(np.where(missing, COPY_NULL, shown).tolist())
    plain = array.tolist()
    types = set(map(type, plain))
    if types <= {str}:
        return copy_texts(plain)
    if types <= {Decimal, float, type(None)}:
        # NaN is the one value that differs from itself.
        return [COPY_NULL if value is None or value != value else str(value) for value in plain]
    if types == {date}:
        # A week's day, the same on every row of the week: each day's text made once.
        days = {day: day.isoformat() for day in set(plain)}
        return [days[day] for day in plain]
    return copy_texts(_column(values))
