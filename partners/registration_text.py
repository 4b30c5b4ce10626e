"""What a deal registration's conflicts and history say, in the reader's language.

A conflict and a step of the history the system writes keep their facts (names, ids, dates),
not a sentence: each is put into words here when it is read, in the language of whoever reads
it, so a manager reading in Chinese sees Chinese whatever language the partner registered in.
Each also keeps its English sentence (`message`, `note`), for the admin and the API's logs;
conflicts stored before facts were kept show that sentence as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import cast

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.models import ChannelKind, localized_name
from crm.templatetags.crm_format import money
from partners.registration_facts import (
    AlreadyCustomerFacts,
    AlreadyRegisteredFacts,
    ChannelOwner,
    ConflictFacts,
    CoveredByOtherChannelFacts,
    EventFacts,
    ExclusiveElsewhereFacts,
    HeldBackFacts,
    ImportedFacts,
    LinkedFacts,
    OutsideAgreementFacts,
    PossibleDuplicateFacts,
    ProtectedUntilFacts,
    ProtectionEndedFacts,
    SegmentNames,
    StoredConflict,
    WonFacts,
)
from partners.registration_models import ConflictCode, DealRegistrationEvent

# Why two registrations, or a registration and an account, look like the same company.
SAME = {
    "account": gettext_lazy("same account"),
    "external_id": gettext_lazy("the partner's own account id"),
    "domain": gettext_lazy("same website domain"),
    "name": gettext_lazy("same company name"),
}


def _day(value: str | None) -> str:
    return date_format(date.fromisoformat(value)) if value else "—"


def _both(parts: Sequence[object]) -> str:
    """Reasons joined as a reader says them: "same website domain and same company name"."""
    return _(" and ").join(str(part) for part in parts)


def same_company(reasons: Sequence[str]) -> str:
    """Why two records look like the same company, from the keys of SAME."""
    return _both([SAME[reason] for reason in reasons if reason in SAME])


def _segment(facts: SegmentNames) -> str:
    region = localized_name(facts["region"], facts["region_zh"])
    vertical = localized_name(facts["vertical"], facts["vertical_zh"])
    return f"{region} / {vertical}"


def _owner(owner: ChannelOwner) -> str:
    if owner["kind"] == ChannelKind.DIRECT:
        return _("sales rep %(name)s (direct)") % {"name": owner["name"]}
    if owner["kind"] == ChannelKind.DISTRIBUTION:
        return _("distributor %(name)s") % {"name": owner["name"]}
    return _("partner %(name)s") % {"name": owner["name"]}


def _already_registered(facts: AlreadyRegisteredFacts) -> str:
    values = {"registration": facts["registration"], "until": _day(facts["until"])}
    if not facts.get("holder"):
        return (
            _(
                "This partner already holds approved registration %(registration)s for this "
                "account, protected until %(until)s; it must end before this one can be approved."
            )
            % values
        )
    return _(
        "%(holder)s holds approved registration %(registration)s for this account, protected "
        "until %(until)s; it must end before this one can be approved."
    ) % {**values, "holder": facts["holder"]}


def _covered_by_other_channel(facts: CoveredByOtherChannelFacts) -> str:
    owners = ", ".join(dict.fromkeys(_owner(owner) for owner in facts["owners"]))
    return _("Covered today by %(owners)s; agree who leads the deal before approving.") % {
        "owners": owners
    }


def _exclusive_elsewhere(facts: ExclusiveElsewhereFacts) -> str:
    return _(
        "%(holder)s holds exclusive agreement %(agreement)s for %(segment)s until %(until)s; "
        "approving would breach it unless that partner agrees."
    ) % {
        "holder": facts["holder"],
        "agreement": facts["agreement"],
        "segment": _segment(facts),
        "until": _day(facts["until"]),
    }


def _outside_agreement(facts: OutsideAgreementFacts) -> str:
    return _(
        "%(partner)s has no agreement in force granting %(segment)s; its coverage would not "
        "count until one does."
    ) % {"partner": facts["partner"], "segment": _segment(facts)}


def _already_customer(facts: AlreadyCustomerFacts) -> str:
    channel = str(dict(ChannelKind.choices).get(facts["channel"], facts["channel"])).lower()
    return _(
        "%(account)s became a customer on %(day)s through the %(channel)s channel; treat this "
        "as an upsell or reject it."
    ) % {"account": facts["account"], "day": _day(facts["converted_on"]), "channel": channel}


def _possible_duplicate(facts: PossibleDuplicateFacts) -> str:
    parts = [
        _("this partner's pending %(registration)s (%(why)s)")
        % {"registration": pending["registration"], "why": same_company(pending["reasons"])}
        for pending in facts["pending"]
    ]
    if facts["accounts"] > 1:
        parts.append(
            _("the company matches %(count)s accounts; link the right one before approving")
            % {"count": facts["accounts"]}
        )
    return _("Possibly the same deal as %(what)s.") % {"what": _("; ").join(parts)}


def facts_sentence(code: str, facts: ConflictFacts) -> str | None:
    """The sentence of a conflict's facts, whose shape its code sets (None: no such code)."""
    match code:
        case ConflictCode.ALREADY_REGISTERED:
            return _already_registered(cast(AlreadyRegisteredFacts, facts))
        case ConflictCode.COVERED_BY_OTHER_CHANNEL:
            return _covered_by_other_channel(cast(CoveredByOtherChannelFacts, facts))
        case ConflictCode.EXCLUSIVE_ELSEWHERE:
            return _exclusive_elsewhere(cast(ExclusiveElsewhereFacts, facts))
        case ConflictCode.OUTSIDE_AGREEMENT:
            return _outside_agreement(cast(OutsideAgreementFacts, facts))
        case ConflictCode.ALREADY_CUSTOMER:
            return _already_customer(cast(AlreadyCustomerFacts, facts))
        case ConflictCode.POSSIBLE_DUPLICATE:
            return _possible_duplicate(cast(PossibleDuplicateFacts, facts))
    return None


def conflict_sentence(conflict: StoredConflict) -> str:
    """The sentence of a stored conflict in the active language; a conflict stored without
    its facts says its stored message."""
    facts = conflict.get("facts")
    sentence = facts_sentence(conflict["code"], facts) if facts is not None else None
    return conflict.get("message", "") if sentence is None else sentence


def conflict_label(code: str) -> str:
    """A conflict code's name in the active language."""
    return str(dict(ConflictCode.choices).get(code, code))


def conflicts_shown(conflicts: Sequence[StoredConflict]) -> list[dict[str, str]]:
    """Stored conflicts as a page shows them: code, name and sentence."""
    return [
        {
            "code": conflict["code"],
            "label": conflict_label(conflict["code"]),
            "message": conflict_sentence(conflict),
        }
        for conflict in conflicts
    ]


def in_english(conflict_facts: ConflictFacts, code: str) -> str:
    """The English sentence of a conflict, kept beside its facts."""
    with translation.override("en"):
        return facts_sentence(code, conflict_facts) or ""


# The history -----------------------------------------------------------------------------------


def _won(facts: WonFacts) -> str:
    text = _("Won %(amount)s on %(day)s.") % {
        "amount": money(Decimal(facts["amount"]), facts["currency"]),
        "day": _day(facts["closed_on"]),
    }
    if facts["converted"]:
        text += " " + _("%(account)s is now a customer.") % {"account": facts["converted"]}
    return text


def _linked(facts: LinkedFacts) -> str:
    if facts["account"]:
        return _("Linked to %(account)s.") % {"account": facts["account"]}
    return _("Treated as a prospect.")


def _held_back(facts: HeldBackFacts) -> str:
    return _("Not approved automatically: %(why)s") % {"why": conflict_sentence(facts["conflict"])}


def _protected_until(facts: ProtectedUntilFacts) -> str:
    return _("Protected until %(day)s.") % {"day": _day(facts["day"])}


def _protection_ended(facts: ProtectionEndedFacts) -> str:
    return _("Protection ended on %(day)s.") % {"day": _day(facts["day"])}


def _imported(facts: ImportedFacts) -> str:
    return _("Imported from %(file)s.") % {"file": facts["file"]}


def _note(facts: EventFacts) -> str:
    if facts["what"] == "won":
        return _won(facts)
    if facts["what"] == "protected_until":
        return _protected_until(facts)
    if facts["what"] == "protection_ended":
        return _protection_ended(facts)
    if facts["what"] == "linked":
        return _linked(facts)
    if facts["what"] == "held_back":
        return _held_back(facts)
    return _imported(facts)


# The steps the system writes, by their facts' "what".
NOTES = frozenset({"won", "protected_until", "protection_ended", "linked", "held_back", "imported"})


def event_note(event: DealRegistrationEvent) -> str:
    """What a history step says in the active language: the system's sentence from its facts,
    or the note a person wrote."""
    if event.facts and event.facts.get("what") in NOTES:
        return _note(event.facts)
    return event.note


def event_note_in_english(facts: EventFacts) -> str:
    """The English sentence of a history step's facts, kept as its note."""
    with translation.override("en"):
        return _note(facts)
