"""Every read of the partner programme that depends on who asks, and the tier names pages show.

Sales managers and executives see the whole programme; a rep every partner's tiers and targets
and its own target; a partner user the programme's tiers (its requirements and benefits are the
partner's business) and its own organisation's tier history, certifications, targets and
survey answers, never another partner's. Business reviews are internal.
"""

from __future__ import annotations

from typing import NotRequired, TypedDict

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils.translation import get_language
from django_stubs_ext import StrOrPromise

from channels.selectors import rep_for_user
from crm.roles import INTERNAL_ROLES, RequestUser, Role, role_of
from partners.programme_models import (
    BusinessReview,
    Certification,
    ReviewAction,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveyWave,
    Target,
    Tier,
    TierChange,
)
from partners.selectors import partner_of_user

_TIER_NAMES_KEY = "programme:tier-names:{language}"


def tier_choices() -> list[tuple[str, str]]:
    """The programme's tiers as (code, name in the reader's language), lowest rank first."""
    return [(tier.code, tier.display_name) for tier in Tier.objects.order_by("rank")]


def entry_tier() -> str:
    """The code of the programme's entry tier (its lowest rank), where new partners start."""
    code = Tier.objects.order_by("rank").values_list("code", flat=True).first()
    return code or "registered"


def tier_names() -> dict[str, str]:
    """Each tier's name in the reader's language, by code (cached until a tier changes)."""
    key = _TIER_NAMES_KEY.format(language=get_language() or "")
    names: dict[str, str] | None = cache.get(key)
    if names is None:
        names = dict(tier_choices())
        cache.set(key, names, 3600)
    return names


def tier_names_forget() -> None:
    """Drop the cached tier names once the transaction that changed a tier commits."""

    def forget() -> None:
        cache.delete_many([_TIER_NAMES_KEY.format(language=code) for code in ("en", "zh-hans")])

    transaction.on_commit(forget)


def tiers_visible_to(user: RequestUser) -> QuerySet[Tier]:
    if role_of(user) in INTERNAL_ROLES or partner_of_user(user) is not None:
        return Tier.objects.all()
    return Tier.objects.none()


def tier_changes_visible_to(user: RequestUser) -> QuerySet[TierChange]:
    role = role_of(user)
    if role in INTERNAL_ROLES:
        return TierChange.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return TierChange.objects.filter(partner=own)
    return TierChange.objects.none()


def certifications_visible_to(user: RequestUser) -> QuerySet[Certification]:
    role = role_of(user)
    if role in INTERNAL_ROLES:
        return Certification.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return Certification.objects.filter(partner=own)
    return Certification.objects.none()


def targets_visible_to(user: RequestUser) -> QuerySet[Target]:
    role = role_of(user)
    if role in {Role.SALES_MANAGER, Role.EXECUTIVE}:
        return Target.objects.all()
    if role == Role.SALES_REP:
        rep = rep_for_user(user)
        own_target = Q(rep=rep) if rep is not None else Q(pk__in=[])
        return Target.objects.filter(Q(partner__isnull=False) | own_target)
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return Target.objects.filter(partner=own)
    return Target.objects.none()


def surveys_visible_to(user: RequestUser) -> QuerySet[Survey]:
    if role_of(user) in INTERNAL_ROLES:
        return Survey.objects.all()
    return Survey.objects.none()


def survey_waves_visible_to(user: RequestUser) -> QuerySet[SurveyWave]:
    if role_of(user) in INTERNAL_ROLES:
        return SurveyWave.objects.all()
    return SurveyWave.objects.none()


def survey_responses_visible_to(user: RequestUser) -> QuerySet[SurveyResponse]:
    role = role_of(user)
    if role in INTERNAL_ROLES:
        return SurveyResponse.objects.all()
    if role == Role.PARTNER_USER and (own := partner_of_user(user)):
        return SurveyResponse.objects.filter(partner=own)
    return SurveyResponse.objects.none()


def business_reviews_visible_to(user: RequestUser) -> QuerySet[BusinessReview]:
    if role_of(user) in INTERNAL_ROLES:
        return BusinessReview.objects.all()
    return BusinessReview.objects.none()


def review_actions_open_for(user: RequestUser) -> QuerySet[ReviewAction]:
    """The open actions a user should follow: those they own, and those owned at the partner
    on the reviews they held; soonest due first."""
    if role_of(user) not in INTERNAL_ROLES:
        return ReviewAction.objects.none()
    return (
        ReviewAction.objects.filter(done_on__isnull=True)
        .filter(Q(owner=user) | Q(owner__isnull=True, review__created_by=user))
        .select_related("review__partner", "owner")
        .order_by("due_on", "id")
    )


class ResponseRate(TypedDict):
    """A survey wave's answers among one channel kind of partners ("" for all of them)."""

    wave_id: int
    channel_kind: str
    invited: int
    answered: int
    partners: int
    partners_answered: int
    rate: float | None
    partner_rate: float | None
    label: NotRequired[StrOrPromise]  # the channel kind in words, where a page shows it


def wave_response_rates(wave_ids: list[int]) -> dict[int, list[ResponseRate]]:
    """Per wave: the invitations and answers per channel kind of the partner (as sent), then
    over all ("" kind): contacts invited and answered, partners invited and with at least one
    answer, and the two rates (none when nobody was invited)."""
    rows = (
        SurveyInvitation.objects.filter(wave_id__in=wave_ids)
        .values("wave_id", "channel_kind")
        .annotate(
            invited=Count("id"),
            answered=Count("id", filter=Q(responded_at__isnull=False)),
            partners=Count("partner_id", distinct=True),
            partners_answered=Count(
                "partner_id", distinct=True, filter=Q(responded_at__isnull=False)
            ),
        )
        .order_by("wave_id", "channel_kind")
    )
    rates: dict[int, list[ResponseRate]] = {pk: [] for pk in wave_ids}
    totals: dict[int, list[int]] = {}
    for row in rows:
        counts = [row["invited"], row["answered"], row["partners"], row["partners_answered"]]
        rates[row["wave_id"]].append(_with_rates(row["wave_id"], row["channel_kind"], counts))
        total = totals.setdefault(row["wave_id"], [0, 0, 0, 0])
        for index, count in enumerate(counts):
            total[index] += count
    for wave_id, total in totals.items():
        rates[wave_id].append(_with_rates(wave_id, "", total))
    return rates


def _with_rates(wave_id: int, channel_kind: str, counts: list[int]) -> ResponseRate:
    invited, answered, partners, partners_answered = counts
    return {
        "wave_id": wave_id,
        "channel_kind": channel_kind,
        "invited": invited,
        "answered": answered,
        "partners": partners,
        "partners_answered": partners_answered,
        "rate": answered / invited if invited else None,
        "partner_rate": partners_answered / partners if partners else None,
    }
