"""Writes of the partner programme: tiers and the programme's settings, partners' tiers and
their history, certifications and yearly targets.

Every function is keyword-only, validates with `full_clean()` and raises ValidationError with a
message a sales manager can act on; nothing is half saved. The weekly evaluation computes its
decisions in `analytics.programme` and records them through `partner_tiers_record`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from channels.models import SalesRep
from partners.models import Partner, PartnerTier
from partners.programme_models import (
    Certification,
    ProgrammeSettings,
    Target,
    Tier,
    TierChange,
    TierChangeSource,
)
from partners.programme_selectors import tier_names_forget

# The tiers a new programme starts with, as migration partners 0005 creates them: the codes
# partners already carry, no requirements, and deal registration's default protection.
DEFAULT_TIERS: tuple[tuple[str, str, str, int], ...] = (
    (PartnerTier.REGISTERED, "Registered", "注册", 0),
    (PartnerTier.SILVER, "Silver", "银牌", 1),
    (PartnerTier.GOLD, "Gold", "金牌", 2),
    (PartnerTier.PLATINUM, "Platinum", "白金", 3),
)


def programme_tiers_ensure() -> None:
    """Create the default tiers when the programme has none (a database emptied by hand, or
    by a test), so partners always have tiers to be in."""
    if Tier.objects.exists():
        return
    for code, name, name_zh, rank in DEFAULT_TIERS:
        Tier.objects.get_or_create(
            code=code, defaults={"name": name, "name_zh": name_zh, "rank": rank}
        )


@dataclass
class TierValues:
    """What a manager sets on a tier: the same fields the tier form edits."""

    code: str
    name: str
    rank: int
    name_zh: str = ""
    min_covered_accounts: int | None = None
    min_conversions: int | None = None
    min_sourced_revenue: Decimal | None = None
    min_registrations_won: int | None = None
    min_satisfaction: Decimal | None = None
    min_nps: int | None = None
    min_certifications: int | None = None
    protection_days: int = 90
    extension_days: int = 30
    auto_approve: bool = False
    discount_percent: Decimal | None = None
    benefits_note: str = ""

    @classmethod
    def of(cls, tier: Tier) -> TierValues:
        return cls(**{f.name: getattr(tier, f.name) for f in fields(cls)})


def _apply(tier: Tier, values: TierValues) -> Tier:
    for name, value in vars(values).items():
        setattr(tier, name, value.strip() if isinstance(value, str) else value)
    tier.full_clean()
    tier.save()
    tier_names_forget()
    return tier


@transaction.atomic
def tier_create(*, values: TierValues) -> Tier:
    """Add a tier to the programme. Raises ValidationError for a taken code or rank, or a
    requirement or benefit out of range."""
    return _apply(Tier(), values)


@transaction.atomic
def tier_update(*, tier: Tier, values: TierValues) -> Tier:
    """Change a tier's name, rank, requirements or benefits. Its code is what partners carry:
    it may change only while no partner holds the tier and no tier change names it. Raises
    ValidationError otherwise, or like `tier_create`."""
    locked = Tier.objects.select_for_update().get(pk=tier.pk)
    if values.code != locked.code and _tier_in_use(locked.code):
        raise ValidationError(
            {"code": _("Partners hold this tier or have held it; its code cannot change.")}
        )
    return _apply(locked, values)


def _tier_in_use(code: str) -> bool:
    return (
        Partner.objects.filter(tier=code).exists()
        or TierChange.objects.filter(Q(from_tier=code) | Q(to_tier=code)).exists()
    )


@transaction.atomic
def tier_delete(*, tier: Tier) -> None:
    """Remove a tier nobody holds. The tier's row is locked first, and every tier assignment
    locks the tiers it reads (`partner_tier_set`, `partner_tiers_record`), so a tier cannot
    disappear under a partner who is being moved into it. Raises ValidationError while a
    partner holds it or the programme would be left without tiers."""
    locked = Tier.objects.select_for_update().get(pk=tier.pk)
    if Partner.objects.filter(tier=locked.code).exists():
        raise ValidationError(
            _("Partners hold this tier: move them to another tier before removing it.")
        )
    if not Tier.objects.exclude(pk=locked.pk).exists():
        raise ValidationError(_("The programme needs at least one tier."))
    locked.delete()
    tier_names_forget()


def programme_settings() -> ProgrammeSettings:
    """The programme's settings (the row is created with the defaults when missing)."""
    settings_row, _created = ProgrammeSettings.objects.get_or_create(pk=1)
    return settings_row


@transaction.atomic
def programme_settings_set(*, downgrade_grace_weeks: int) -> ProgrammeSettings:
    """Set the weeks a partner keeps a tier whose requirements it no longer meets (0-52).
    Raises ValidationError out of range."""
    settings_row = programme_settings()
    settings_row.downgrade_grace_weeks = downgrade_grace_weeks
    settings_row.full_clean()
    settings_row.save()
    return settings_row


def _locked_tiers(codes: Sequence[str]) -> dict[str, Tier]:
    return {tier.code: tier for tier in Tier.objects.select_for_update().filter(code__in=codes)}


def _iso_week(day: date) -> str:
    year, week, _weekday = day.isocalendar()
    return f"{year:04d}-W{week:02d}"


@transaction.atomic
def partner_tier_set(*, partner: Partner, tier: str, by: User | None, reason: str = "") -> Partner:
    """A manager moves a partner to `tier`, recorded in its tier history with the week and who
    did it. The weekly evaluation goes on from the new tier. Raises ValidationError for a tier
    the programme does not define; setting the tier it holds changes nothing."""
    if tier not in _locked_tiers([tier]):
        raise ValidationError({"tier": _("Choose one of the programme's tiers.")})
    locked = Partner.objects.select_for_update().get(pk=partner.pk)
    if locked.tier == tier:
        return locked
    today = timezone.localdate()
    change = TierChange(
        partner=locked,
        week=_iso_week(today),
        as_of=today,
        from_tier=locked.tier,
        to_tier=tier,
        source=TierChangeSource.MANAGER,
        reason=reason.strip(),
        changed_by=by,
    )
    change.full_clean()
    change.save()
    locked.tier = tier
    locked.save(update_fields=["tier", "updated_at"])
    partner.tier = tier
    return locked


@dataclass(frozen=True)
class TierDecision:
    """A partner's tier change decided by a week's evaluation, with the evidence to keep."""

    partner_id: int
    from_tier: str
    to_tier: str
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


# Within a week, a manager's change comes before the evaluation of that week (which runs once
# the week has closed).
_SOURCE_ORDER = {TierChangeSource.MANAGER: 0, TierChangeSource.EVALUATION: 1}


def _order(change: TierChange) -> tuple[str, int, datetime, int]:
    source = _SOURCE_ORDER[TierChangeSource(change.source)]
    return (change.week, source, change.created_at, change.pk)


def partner_tiers_before(week: str, *, now: Mapping[int, str] | None = None) -> dict[int, str]:
    """Every partner's tier as it stood when `week`'s evaluation starts: after every change
    of an earlier week and every manager's change of that week. For a partner with no change
    from that point on, that is its tier now; for the others it is read from the history (the
    last change before, or the first change after's starting tier). `now`: the partners'
    tiers now when the caller has just read them (read here when none); the answer covers
    the partners of `now` and those with such a change."""
    tiers = (
        dict(now) if now is not None else dict(Partner.objects.order_by().values_list("id", "tier"))
    )
    later = TierChange.objects.filter(
        Q(week__gt=week) | Q(week=week, source=TierChangeSource.EVALUATION)
    )
    redo = set(later.values_list("partner_id", flat=True))
    if redo:
        history: dict[int, list[TierChange]] = {}
        for change in TierChange.objects.filter(partner_id__in=redo):
            history.setdefault(change.partner_id, []).append(change)
        for partner_id, changes in history.items():
            changes.sort(key=_order)
            before = [
                c
                for c in changes
                if (c.week, _SOURCE_ORDER[TierChangeSource(c.source)]) < (week, 1)
            ]
            tiers[partner_id] = before[-1].to_tier if before else changes[0].from_tier
    return tiers


@transaction.atomic
def partner_tiers_record(
    *, week: str, as_of: date, decisions: Sequence[TierDecision]
) -> dict[int, str]:
    """Record `week`'s evaluation: its tier changes replace any earlier evaluation of the same
    week (so running a week twice records it once), and each partner whose history changed
    takes the tier its latest change leads to. Raises ValidationError when a decision names a
    tier the programme does not define. Returns the partners whose tier changed now, with the
    tier they hold."""
    codes = {d.to_tier for d in decisions}
    known = _locked_tiers(sorted(codes))
    unknown = sorted(codes - set(known))
    if unknown:
        raise ValidationError(_("Unknown tiers: %(codes)s.") % {"codes": ", ".join(unknown)})
    replaced = list(
        TierChange.objects.filter(week=week, source=TierChangeSource.EVALUATION).values_list(
            "partner_id", "from_tier"
        )
    )
    TierChange.objects.filter(week=week, source=TierChangeSource.EVALUATION).delete()
    TierChange.objects.bulk_create(
        [
            TierChange(
                partner_id=d.partner_id,
                week=week,
                as_of=as_of,
                from_tier=d.from_tier,
                to_tier=d.to_tier,
                source=TierChangeSource.EVALUATION,
                evidence=d.evidence,
                reason=d.reason,
            )
            for d in decisions
            if d.from_tier != d.to_tier
        ],
        batch_size=1000,
    )
    touched = {partner_id for partner_id, _tier in replaced} | {d.partner_id for d in decisions}
    undone = dict(replaced)
    now_held: dict[int, str] = {}
    latest: dict[int, TierChange] = {}
    for change in TierChange.objects.filter(partner_id__in=touched):
        if change.partner_id not in latest or _order(change) > _order(latest[change.partner_id]):
            latest[change.partner_id] = change
    for partner_id in touched:
        if partner_id in latest:
            now_held[partner_id] = latest[partner_id].to_tier
        elif partner_id in undone:
            now_held[partner_id] = undone[partner_id]
    current = dict(Partner.objects.filter(pk__in=list(now_held)).values_list("id", "tier"))
    moved = {pk: tier for pk, tier in now_held.items() if current.get(pk) != tier}
    by_tier: dict[str, list[int]] = {}
    for partner_id, tier in moved.items():
        by_tier.setdefault(tier, []).append(partner_id)
    now = timezone.now()
    for tier, partner_ids in by_tier.items():
        Partner.objects.filter(pk__in=partner_ids).update(tier=tier, updated_at=now)
    return moved


# Certifications ---------------------------------------------------------------------------------


@transaction.atomic
def certification_add(
    *,
    partner: Partner,
    name: str,
    earned_on: date,
    holder: str = "",
    expires_on: date | None = None,
) -> Certification:
    """Record a certification the partner holds. Raises ValidationError for a missing name or
    an expiry before the day it was earned."""
    certification = Certification(
        partner=partner,
        name=name.strip(),
        holder=holder.strip(),
        earned_on=earned_on,
        expires_on=expires_on,
    )
    certification.full_clean()
    certification.save()
    return certification


@transaction.atomic
def certification_remove(*, certification: Certification) -> None:
    """Remove a certification recorded by mistake (an expired one simply stops counting)."""
    certification.delete()


# Targets ----------------------------------------------------------------------------------------


@transaction.atomic
def target_set(
    *,
    year: int,
    partner: Partner | None = None,
    rep: SalesRep | None = None,
    accounts_covered: int | None = None,
    conversions: int | None = None,
    revenue: Decimal | None = None,
) -> Target:
    """Set the yearly target of one partner or one rep (replacing that year's target). Blank
    figures are not targeted; a partner's blank revenue target is the annual target of its
    agreements in force (docs/metrics.md rule 22). Raises ValidationError for neither or both
    owners, a year outside 2000-2199, a negative figure, or no figure at all."""
    if (partner is None) == (rep is None):
        raise ValidationError(_("A target belongs to one partner or one rep."))
    if accounts_covered is None and conversions is None and revenue is None:
        raise ValidationError(_("Set at least one figure of the target."))
    owner: dict[str, Partner | SalesRep | None] = (
        {"partner": partner} if partner is not None else {"rep": rep}
    )
    target = (
        Target.objects.select_for_update().filter(year=year, **owner).first()
        if 2000 <= year <= 2199
        else None
    ) or Target(year=year, **owner)
    target.accounts_covered = accounts_covered
    target.conversions = conversions
    target.revenue = revenue
    target.full_clean()
    try:
        # Two managers setting the same new target at once: the unique constraint keeps one.
        with transaction.atomic():
            target.save()
    except IntegrityError as error:
        raise ValidationError(
            _("This target was just set by someone else; reload and check it.")
        ) from error
    return target


@transaction.atomic
def target_delete(*, target: Target) -> None:
    """Remove a target; the weekly snapshots already taken keep the figures they recorded."""
    target.delete()
