"""The market files: names, headers and the order they load in."""

from __future__ import annotations

from dataclasses import dataclass

from crm.columns import ACCOUNT_COLUMNS


@dataclass(frozen=True)
class MarketFile:
    name: str
    columns: tuple[str, ...]
    # Columns a file may leave out: what they set stays as it is when they are absent.
    optional: tuple[str, ...] = ()


REGIONS = MarketFile("regions.csv", ("code", "name"), optional=("name_zh",))
VERTICALS = MarketFile("verticals.csv", ("code", "name"), optional=("name_zh",))
ACCOUNTS = MarketFile("accounts.csv", ACCOUNT_COLUMNS)
REPS = MarketFile("reps.csv", ("external_id", "name", "email", "regions"))
PARTNERS = MarketFile(
    "partners.csv", ("external_id", "name", "channel_kind", "partner_type", "tier")
)
AGREEMENTS = MarketFile(
    "agreements.csv",
    (
        "external_id",
        "partner",
        "agreement_type",
        "start_date",
        "end_date",
        "signed_on",
        "terminated_on",
        "regions",
        "verticals",
        "exclusive",
    ),
)
COVERAGE = MarketFile("coverage.csv", ("account", "kind", "owner", "start_date", "end_date"))
REGISTRATIONS = MarketFile(
    "registrations.csv",
    (
        "external_id",
        "partner",
        "company_name",
        "website",
        "region",
        "vertical",
        "size_band",
        "offering",
        "amount",
        "currency",
        "expected_close_on",
        "description",
        "contact_name",
        "contact_email",
        "contact_phone",
        "status",
        "account",
        "submitted_on",
        "decided_on",
        "protected_until",
        "decision_reason",
        "closed_on",
        "won_amount",
    ),
)

FX_RATES = MarketFile("fx_rates.csv", ("currency", "valid_from", "rate_to_reporting"))
OPPORTUNITIES = MarketFile(
    "opportunities.csv",
    (
        "external_id",
        "account",
        "channel",
        "owner",
        "stage",
        "amount",
        "currency",
        "recurring",
        "opened_on",
        "expected_close_on",
        "closed_on",
        "ends_on",
    ),
    # Left unchanged when absent: a label, the open sub-stage (its code; empty: the first),
    # why a deal was lost, and the deal registration it came from (its external id).
    optional=("name", "sub_stage", "lost_reason", "registration"),
)

# Dependency order: each file may refer to rows of the files before it.
MARKET_FILES: tuple[MarketFile, ...] = (
    REGIONS,
    VERTICALS,
    FX_RATES,
    ACCOUNTS,
    REPS,
    PARTNERS,
    AGREEMENTS,
    COVERAGE,
    REGISTRATIONS,
    OPPORTUNITIES,
)
MARKET_FILES_BY_NAME = {market_file.name: market_file for market_file in MARKET_FILES}

LIST_SEPARATOR = ";"
