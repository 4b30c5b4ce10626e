"""The six conflict checks of a deal registration, from our own coverage, agreement and
registration records, as of a day.

Each conflict carries its code and the facts of a sentence a manager can act on
(`registration_text` words it in the reader's language); the sentences name other partners and
channels, so they are for internal users only. Partners only learn that their
registration needs review. "Covers" means what the weekly metrics count (README, "Metrics"): an
assignment active on the day and, for a distributor or partner, an agreement in force on the day
that grants the account's region and vertical.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, QuerySet

from channels.models import CoverageAssignment
from channels.selectors import active_coverage_q
from crm.models import Account, ChannelKind
from partners.models import Agreement
from partners.registration_facts import (
    ChannelOwner,
    ConflictFacts,
    PendingRegistration,
    SegmentNames,
    StoredConflict,
)
from partners.registration_matching import similar_registrations, similarity_keys
from partners.registration_models import ConflictCode, DealRegistration, RegistrationStatus
from partners.registration_text import facts_sentence, in_english
from partners.selectors import agreements_in_force_q


@dataclass(frozen=True)
class Conflict:
    code: str
    facts: ConflictFacts

    @property
    def message(self) -> str:
        """The sentence, in the active language."""
        return facts_sentence(self.code, self.facts) or ""

    def as_json(self) -> StoredConflict:
        """As stored on the registration: the code, the facts and the English sentence."""
        return {
            "code": self.code,
            "facts": self.facts,
            "message": in_english(self.facts, self.code),
        }


def agreements_granting(
    *,
    region_id: int,
    vertical_id: int,
    day: date,
    partner_ids: Collection[int] | None = None,
    exclusive: bool | None = None,
) -> QuerySet[Agreement]:
    """Agreements in force on `day` whose regions and verticals include the segment (empty
    lists grant all), of the partners in `partner_ids` (None: of every partner); with
    `exclusive`, only exclusive ones. One query, whatever the number of agreements."""
    regions = Agreement.regions.through.objects.filter(agreement_id=OuterRef("pk"))
    verticals = Agreement.verticals.through.objects.filter(agreement_id=OuterRef("pk"))
    agreements = Agreement.objects.filter(agreements_in_force_q(day)).filter(
        ~Exists(regions) | Exists(regions.filter(region_id=region_id)),
        ~Exists(verticals) | Exists(verticals.filter(vertical_id=vertical_id)),
    )
    if partner_ids is not None:
        agreements = agreements.filter(partner_id__in=partner_ids)
    if exclusive is not None:
        agreements = agreements.filter(exclusive=exclusive)
    return agreements.select_related("partner").order_by("partner__name", "id")


def _segment(registration: DealRegistration) -> tuple[int, int]:
    """The segment that counts: the account's when there is one, else what the partner gave."""
    if registration.account is not None:
        return registration.account.region_id, registration.account.vertical_id
    return registration.region_id, registration.vertical_id


def _already_registered(registration: DealRegistration, day: date) -> Conflict | None:
    if registration.account_id is None:
        return None
    holder = (
        DealRegistration.objects.filter(
            account_id=registration.account_id,
            status=RegistrationStatus.APPROVED,
            protected_until__gte=day,
        )
        .exclude(pk=registration.pk)
        .select_related("partner")
        .first()
    )
    if holder is None:
        return None
    return Conflict(
        ConflictCode.ALREADY_REGISTERED,
        {
            "holder": "" if holder.partner_id == registration.partner_id else holder.partner.name,
            "registration": holder.external_id,
            "until": holder.protected_until.isoformat() if holder.protected_until else None,
        },
    )


def _covered_by_other_channel(
    registration: DealRegistration, day: date, granting: list[Agreement]
) -> Conflict | None:
    if registration.account_id is None:
        return None
    active = (
        CoverageAssignment.objects.filter(
            active_coverage_q(day), account_id=registration.account_id
        )
        .exclude(kind=ChannelKind.ONLINE)
        .exclude(partner_id=registration.partner_id)
        .select_related("rep", "partner")
        .order_by("start_date", "id")
    )
    assignments = list(active)
    in_force = {agreement.partner_id for agreement in granting}
    owners: list[ChannelOwner] = []
    for assignment in assignments:
        # The database holds that a direct row has a rep and a partner's row a partner.
        if assignment.kind == ChannelKind.DIRECT and assignment.rep is not None:
            owners.append({"kind": assignment.kind, "name": assignment.rep.name})
        elif assignment.partner_id in in_force and assignment.partner is not None:
            owners.append({"kind": assignment.kind, "name": assignment.partner.name})
    if not owners:
        return None
    return Conflict(ConflictCode.COVERED_BY_OTHER_CHANNEL, {"owners": owners})


def _segment_facts(registration: DealRegistration) -> SegmentNames:
    """The counting segment's names (the account's or the registration's, both read already)."""
    holder: Account | DealRegistration = (
        registration.account if registration.account is not None else registration
    )
    return {
        "region": holder.region.name,
        "region_zh": holder.region.name_zh,
        "vertical": holder.vertical.name,
        "vertical_zh": holder.vertical.name_zh,
    }


def _exclusive_elsewhere(
    registration: DealRegistration, granting: list[Agreement]
) -> Conflict | None:
    holder = next(
        (a for a in granting if a.exclusive and a.partner_id != registration.partner_id), None
    )
    if holder is None:
        return None
    return Conflict(
        ConflictCode.EXCLUSIVE_ELSEWHERE,
        {
            "holder": holder.partner.name,
            "agreement": holder.external_id,
            "until": holder.end_date.isoformat(),
            **_segment_facts(registration),
        },
    )


def _outside_agreement(
    registration: DealRegistration, granting: list[Agreement]
) -> Conflict | None:
    if any(agreement.partner_id == registration.partner_id for agreement in granting):
        return None
    return Conflict(
        ConflictCode.OUTSIDE_AGREEMENT,
        {"partner": registration.partner.name, **_segment_facts(registration)},
    )


def _already_customer(registration: DealRegistration, day: date) -> Conflict | None:
    account = registration.account
    if account is None or account.converted_on is None or account.converted_on > day:
        return None
    return Conflict(
        ConflictCode.ALREADY_CUSTOMER,
        {
            "account": account.name,
            "converted_on": account.converted_on.isoformat(),
            "channel": account.converted_via,
        },
    )


def _possible_duplicate(
    registration: DealRegistration, *, ambiguous_accounts: int
) -> Conflict | None:
    """The same partner registered the company already and waits for a decision, or the
    company is near-identical to several accounts. Other partners' pending claims are not a
    conflict: the first approved wins (`already_registered`); the manager sees them among the
    likely duplicates."""
    pending = list(
        similar_registrations(registration).filter(
            status=RegistrationStatus.SUBMITTED, partner_id=registration.partner_id
        )[:5]
    )
    if not pending and ambiguous_accounts <= 1:
        return None
    return Conflict(
        ConflictCode.POSSIBLE_DUPLICATE,
        {
            "pending": [
                PendingRegistration(
                    registration=other.external_id, reasons=similarity_keys(registration, other)
                )
                for other in pending
            ],
            "accounts": ambiguous_accounts,
        },
    )


def registration_conflicts(
    *, registration: DealRegistration, day: date, ambiguous_accounts: int = 0
) -> list[Conflict]:
    """The conflicts of `registration` on `day`, in the order of ConflictCode.

    `ambiguous_accounts` is how many accounts the company matched when none could be chosen
    (a possible duplicate). A prospect (no account) can only be outside the agreement,
    exclusive elsewhere or a possible duplicate.
    """
    region_id, vertical_id = _segment(registration)
    # Every agreement in force granting the segment, read once: whose coverage counts,
    # who holds it exclusively, and whether the registering partner may sell there.
    granting = list(agreements_granting(region_id=region_id, vertical_id=vertical_id, day=day))
    found: list[Conflict | None] = []
    if registration.account_id:
        found.append(_already_registered(registration, day))
        found.append(_covered_by_other_channel(registration, day, granting))
    found.append(_exclusive_elsewhere(registration, granting))
    found.append(_outside_agreement(registration, granting))
    found.append(_already_customer(registration, day))
    found.append(_possible_duplicate(registration, ambiguous_accounts=ambiguous_accounts))
    return [conflict for conflict in found if conflict is not None]
