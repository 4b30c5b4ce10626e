"""The shapes of a deal registration's stored facts (JSON fields): each conflict's facts, by its
code, as `registration_conflicts` finds them and `registration.conflicts` keeps them; and each
step of the history the system writes (`DealRegistrationEvent.facts`), by its `what`.
`registration_text` puts both into words in the reader's language."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

# Conflicts, one shape per ConflictCode ---------------------------------------------------------


class AlreadyRegisteredFacts(TypedDict):
    holder: str  # the holding partner's name; "" when it is the registering partner
    registration: str
    until: str | None  # ISO day


class ChannelOwner(TypedDict):
    kind: str  # a ChannelKind
    name: str


class CoveredByOtherChannelFacts(TypedDict):
    owners: list[ChannelOwner]


class SegmentNames(TypedDict):
    region: str
    region_zh: str
    vertical: str
    vertical_zh: str


class ExclusiveElsewhereFacts(SegmentNames):
    holder: str
    agreement: str
    until: str  # ISO day


class OutsideAgreementFacts(SegmentNames):
    partner: str


class AlreadyCustomerFacts(TypedDict):
    account: str
    converted_on: str  # ISO day
    channel: str  # a ChannelKind


class PendingRegistration(TypedDict):
    registration: str
    reasons: list[str]  # keys of registration_text.SAME


class PossibleDuplicateFacts(TypedDict):
    pending: list[PendingRegistration]
    accounts: int  # how many accounts the company matched when none could be chosen


ConflictFacts = (
    AlreadyRegisteredFacts
    | CoveredByOtherChannelFacts
    | ExclusiveElsewhereFacts
    | OutsideAgreementFacts
    | AlreadyCustomerFacts
    | PossibleDuplicateFacts
)


class StoredConflict(TypedDict):
    """A conflict as a registration keeps it: its code, its facts (their shape set by the
    code; absent on conflicts stored before facts were kept) and its English sentence."""

    code: str
    facts: NotRequired[ConflictFacts]
    message: str


# The history, one shape per step the system writes ---------------------------------------------


class WonFacts(TypedDict):
    what: Literal["won"]
    amount: str  # a Decimal as text
    currency: str
    closed_on: str  # ISO day
    converted: str  # the account's name when the win made it a customer, else ""


class ProtectedUntilFacts(TypedDict):
    what: Literal["protected_until"]
    day: str  # ISO day


class ProtectionEndedFacts(TypedDict):
    what: Literal["protection_ended"]
    day: str | None  # ISO day


class LinkedFacts(TypedDict):
    what: Literal["linked"]
    account: str  # "" when treated as a prospect


class HeldBackFacts(TypedDict):
    what: Literal["held_back"]
    conflict: StoredConflict


class ImportedFacts(TypedDict):
    what: Literal["imported"]
    file: str


EventFacts = (
    WonFacts
    | ProtectedUntilFacts
    | ProtectionEndedFacts
    | LinkedFacts
    | HeldBackFacts
    | ImportedFacts
)
