"""Row-by-row validation of the market files.

Each file is read once as a stream. A good row is normalised and handed to the staging; a bad
row adds one problem per bad cell, worded `file:line: column: problem`. Only what the checks
across rows need stays in memory: the keys seen so far (for duplicates) and the codes and
external ids later files may refer to. Every database constraint on the imported tables has a
check here, so a run that validates cannot fail on a constraint half-way through writing.

accounts.csv, a million rows in a large market, is first checked a block of rows at a time as
columns (`market_csv.blocks`, `MarketValidator._accounts_in_blocks`); a file with a bad row goes
row by row, which words its problems.
"""

from __future__ import annotations

import operator
from itertools import chain, compress, repeat
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Model
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from channels.models import CoverageAssignment, SalesRep
from crm.models import (
    EARLIEST_DATE,
    LATEST_DATE,
    Account,
    ChannelKind,
    Region,
    SizeBand,
    Vertical,
)
from crm.names import company_name_key, company_name_keys
from crm.sql import COPY_NULL, copy_text
from partners.coverage_kinds import NO_COVERAGE
from partners.market_csv.blocks import NotPlain, plain_blocks
from partners.market_csv.checks import Anything, RowChecks, is_date, max_length, other_kind
from partners.market_csv.files import (
    ACCOUNTS,
    AGREEMENTS,
    COVERAGE,
    FX_RATES,
    LIST_SEPARATOR,
    OPPORTUNITIES,
    PARTNERS,
    REGIONS,
    REGISTRATIONS,
    REPS,
    VERTICALS,
    MarketFile,
)
from partners.market_csv.registrations import registrations_validate
from partners.market_csv.revenue import fx_rates_validate, opportunities_validate
from partners.market_csv.store import (
    STAGE_ACCOUNT,
    STAGE_AGREEMENT,
    STAGE_AGREEMENT_REGION,
    STAGE_AGREEMENT_VERTICAL,
    STAGE_COVERAGE,
    STAGE_PARTNER,
    STAGE_REGION,
    STAGE_REP,
    STAGE_REP_REGION,
    STAGE_VERTICAL,
    DirectLoad,
    MarketStore,
    copy_defaults,
    copy_ids,
    file_lines,
)
from partners.models import (
    Agreement,
    AgreementStatus,
    AgreementType,
    Partner,
    PartnerKind,
    PartnerType,
)
from partners.programme_models import Tier

PARTNER_KINDS = frozenset(PartnerKind.values)
# Rows per block of accounts.csv checked as columns (`MarketValidator._accounts_in_blocks`).
ACCOUNT_BLOCK_ROWS = 50_000
# The columns of an account row copied straight into an empty accounts table, before the
# defaults of the columns the file does not carry and the two timestamps.
ACCOUNT_COLUMNS = (
    "external_id",
    "name",
    "name_key",
    "region_id",
    "vertical_id",
    "size_band",
    "entered_on",
    "archived_on",
    "converted_on",
    "converted_via",
)
# The fields of those columns.
ACCOUNT_FIELDS = (*ACCOUNTS.columns, "name_key")


def _lengths_within(texts: list[str], longest: int) -> bool:
    """Every text is set and at most `longest` characters long."""
    lengths = set(map(len, texts))
    return not lengths or (min(lengths) > 0 and max(lengths) <= longest)


class MarketValidator(RowChecks):
    """Validates the files of one run in dependency order and stages the good rows.

    `problems` collects every problem found; `rows` counts the data rows read per file.
    """

    def validate(self, market_file: MarketFile, path: Path) -> None:
        check = {
            REGIONS.name: self._regions,
            VERTICALS.name: self._verticals,
            ACCOUNTS.name: self._accounts,
            REPS.name: self._reps,
            PARTNERS.name: self._partners,
            AGREEMENTS.name: self._agreements,
            COVERAGE.name: self._coverage,
            REGISTRATIONS.name: self._registrations,
            FX_RATES.name: self._fx_rates,
            OPPORTUNITIES.name: self._opportunities,
        }[market_file.name]
        self.rows[market_file.name] = 0
        try:
            check(path)
        except BaseException as error:
            for load in self.staging.direct.values():
                load.end(error)
            self.staging.end(error)
            raise
        # A file loaded straight into its table has written its last rows (see `DirectLoad`).
        for load in self.staging.direct.values():
            load.end()
        if market_file.name in self.unreadable:
            if market_file is REGIONS:
                self.region_codes = Anything()
            elif market_file is VERTICALS:
                self.vertical_codes = Anything()
            elif market_file is REPS:
                self.rep_ids = Anything()
        self.staging.flush()

    # -- files -------------------------------------------------------------------------------

    def _coded(
        self, path: Path, market_file: MarketFile, model: type[Model], known: set[str]
    ) -> None:
        name = market_file.name
        stage = STAGE_REGION if model is Region else STAGE_VERTICAL
        what = gettext_noop("region code") if model is Region else gettext_noop("vertical code")
        seen: dict[str, int] = {}
        code_length = max_length(model, "code")
        name_length = max_length(model, "name")
        for line, (code_cell, label_cell, label_zh_cell) in self._rows(path, market_file):
            count = len(self.problems)
            code = self._key(name, line, "code", code_cell, code_length, seen, what)
            if code and LIST_SEPARATOR in code:
                self.problem(
                    name,
                    line,
                    "code",
                    _("must not contain %(separator)r") % {"separator": LIST_SEPARATOR},
                )
            elif code and code != code.strip():
                self.problem(
                    name,
                    line,
                    "code",
                    _("must not start or end with a space: %(code)r") % {"code": code},
                )
            label = self._text(name, line, "name", label_cell, name_length)
            label_zh: str | None = label_zh_cell
            if label_zh_cell:
                label_zh = self._text(name, line, "name_zh", label_zh_cell, name_length)
            if code:
                known.add(code)
            if len(self.problems) == count:
                self.staging.add(stage, (code, label, label_zh or ""))

    def _regions(self, path: Path) -> None:
        self._coded(path, REGIONS, Region, self.region_codes)

    def _verticals(self, path: Path) -> None:
        self._coded(path, VERTICALS, Vertical, self.vertical_codes)

    def _accounts(self, path: Path) -> None:
        if self._accounts_in_blocks(path):
            return
        name = ACCOUNTS.name
        # Each external id and its first line, for the problem of a repeated one.
        seen: dict[str, int] = {}
        regions, verticals = self.region_codes, self.vertical_codes
        size_bands = frozenset(SizeBand.values)
        kinds = ChannelKind.values
        id_length = max_length(Account, "external_id")
        name_length = max_length(Account, "name")
        problems = self.problems
        stage = self.staging.add
        direct = self._accounts_direct(path)
        direct_add = direct.add if direct is not None else None
        if direct is not None:
            region_ids = copy_ids(Region.objects.values_list("code", "id"))
            vertical_ids = copy_ids(Vertical.objects.values_list("code", "id"))
            now = self.now.isoformat()
            defaults = copy_defaults(Account, ACCOUNT_FIELDS, self._account_defaults())[1]
        # The checks are spelled out inline: this loop runs once per account, millions of times.
        for line, cells in self._rows(path, ACCOUNTS):
            count = len(problems)
            external_id, label, region, vertical, band, entered, archived, converted, via = cells
            if not (
                external_id
                and len(external_id) <= id_length
                and seen.setdefault(external_id, line) == line
            ):
                self._key(
                    name,
                    line,
                    "external_id",
                    external_id,
                    id_length,
                    seen,
                    gettext_noop("external id"),
                )
            if not label or len(label) > name_length:
                self._text(name, line, "name", label, name_length)
            if region not in regions:
                self._unknown(name, line, "region", region, gettext_noop("region code"))
            if vertical not in verticals:
                self._unknown(name, line, "vertical", vertical, gettext_noop("vertical code"))
            if band not in size_bands:
                self._choice(name, line, "size_band", band, SizeBand.values)
            entered_on: str | None = entered
            if not is_date(entered):
                entered_on = self._date(name, line, "entered_on", entered, required=True)
            archived_on = archived or None
            if archived and not is_date(archived):
                archived_on = self._date(name, line, "archived_on", archived, required=False)
            converted_on = converted or None
            if converted and not is_date(converted):
                converted_on = self._date(name, line, "converted_on", converted, required=False)
            if archived_on and entered_on and archived_on < entered_on:
                self._not_before(name, line, "archived_on", archived_on, "entered_on", entered_on)
            if via:
                if via not in kinds:
                    self._choice(name, line, "converted_via", via, kinds)
                elif not converted:
                    self.problem(
                        name, line, "converted_via", _("must be empty when converted_on is")
                    )
            elif converted:
                self.problem(name, line, "converted_via", _("required when converted_on is set"))
            if len(problems) == count and direct_add is not None:
                key = company_name_key(label)
                free = external_id + label + key
                if "\\" in free or "\t" in free or "\n" in free or "\r" in free:
                    external_id, label, key = map(copy_text, (external_id, label, key))
                direct_add(
                    "\t".join(
                        (
                            external_id,
                            label,
                            key,
                            region_ids[region],
                            vertical_ids[vertical],
                            band,
                            entered,
                            archived_on or COPY_NULL,
                            converted_on or COPY_NULL,
                            via,
                            defaults,
                            now,
                            now,
                        )
                    )
                )
            elif len(problems) == count:
                stage(
                    STAGE_ACCOUNT,
                    (
                        external_id,
                        label,
                        region,
                        vertical,
                        band,
                        entered,
                        archived_on,
                        converted_on,
                        via,
                        company_name_key(label),
                    ),
                )
        self.account_ids.update(seen)

    def _accounts_in_blocks(self, path: Path) -> bool:
        """Check and write accounts.csv a block of rows at a time, as columns
        (`market_csv.blocks`). False, with nothing kept of the attempt, when the file needs the
        row-by-row checks of `_accounts`: one of its rows is bad (they word the problem), or it
        is written in a way only the csv reader takes apart. The attempt runs in a savepoint,
        so the rows it wrote before finding that out are gone."""
        staging = self.staging
        try:
            with transaction.atomic(using=connection.alias):
                try:
                    self._account_blocks(path)
                except BaseException as error:
                    load = staging.direct.get(ACCOUNTS.name)
                    if load is not None:
                        load.end(error)
                    staging.end(error)
                    raise
        except NotPlain:
            staging.direct.pop(ACCOUNTS.name, None)
            for market_file in (REGIONS, VERTICALS):
                staging.stored_early.pop(market_file.name, None)
            if staging.enabled:
                staging.buffers[STAGE_ACCOUNT].clear()
                staging.rows[STAGE_ACCOUNT] = 0
            self.account_ids.clear()
            self.rows[ACCOUNTS.name] = 0
            return False
        return True

    def _account_blocks(self, path: Path) -> None:
        """`_accounts_in_blocks`' checks: the same as `_accounts`', on whole columns. A block
        passes or raises `NotPlain`; the rows of a block that passes are written at once."""
        blocks = plain_blocks(path, ACCOUNTS.columns, rows=ACCOUNT_BLOCK_ROWS)
        first = next(blocks, None)  # the file is read and its first block split before a write
        seen = self.account_ids
        regions, verticals = self.region_codes, self.vertical_codes
        size_bands = frozenset(SizeBand.values)
        kinds = frozenset(ChannelKind.values)
        id_length = max_length(Account, "external_id")
        name_length = max_length(Account, "name")
        good_dates: set[str] = set()
        direct = self._accounts_direct(path)
        postgres = self.staging.enabled and connection.vendor == "postgresql"
        if direct is not None:
            region_ids = copy_ids(Region.objects.values_list("code", "id"))
            vertical_ids = copy_ids(Vertical.objects.values_list("code", "id"))
            now = self.now.isoformat()
            defaults = copy_defaults(Account, ACCOUNT_FIELDS, self._account_defaults())[1]
            tail = f"{defaults}\t{now}\t{now}"
        for block in chain([first] if first else [], blocks):
            ids, labels, region, vertical, bands, entered, archived, converted, via = block.columns
            rows = block.rows
            known = len(seen)
            seen.update(ids)
            dates = set(entered) | set(archived) | set(converted)
            dates.discard("")
            new_dates = dates - good_dates
            if not (
                len(seen) == known + rows  # no key repeated
                and _lengths_within(ids, id_length)
                and _lengths_within(labels, name_length)
                and all(code in regions for code in set(region))
                and all(code in verticals for code in set(vertical))
                and set(bands) <= size_bands
                and "" not in set(entered)
                and all(map(is_date, new_dates))
                # archived_on not before entered_on, where set
                and not any(
                    map(str.__lt__, compress(archived, archived), compress(entered, archived))
                )
                # converted_via one of the kinds where converted_on is set, empty where not
                and set(compress(via, converted)) <= kinds
                and not any(compress(via, map(operator.not_, converted)))
            ):
                raise NotPlain
            good_dates |= new_dates
            self.rows[ACCOUNTS.name] += rows
            keys = company_name_keys(labels)
            archived_on = [day or COPY_NULL for day in archived]
            converted_on = [day or COPY_NULL for day in converted]
            if block.escaped and (direct is not None or postgres):
                ids, labels, keys, region, vertical = (
                    list(map(copy_text, column)) for column in (ids, labels, keys, region, vertical)
                )
            if direct is not None:
                direct.add_lines(
                    list(
                        map(
                            "\t".join,
                            zip(
                                ids,
                                labels,
                                keys,
                                map(region_ids.__getitem__, region),
                                map(vertical_ids.__getitem__, vertical),
                                bands,
                                entered,
                                archived_on,
                                converted_on,
                                via,
                                repeat(tail),
                            ),
                        )
                    )
                )
            elif postgres:
                self.staging.add_lines(
                    STAGE_ACCOUNT,
                    list(
                        map(
                            "\t".join,
                            zip(
                                ids,
                                labels,
                                region,
                                vertical,
                                bands,
                                entered,
                                archived_on,
                                converted_on,
                                via,
                                keys,
                                strict=True,
                            ),
                        )
                    ),
                )
            else:
                for row in zip(
                    ids,
                    labels,
                    region,
                    vertical,
                    bands,
                    entered,
                    [day or None for day in archived],
                    [day or None for day in converted],
                    via,
                    keys,
                    strict=True,
                ):
                    self.staging.add(STAGE_ACCOUNT, row)
        # The rows are stored before the savepoint is left.
        if direct is not None:
            direct.end()
        self.staging.end()

    def _account_defaults(self) -> dict[str, Any]:
        """Values of columns accounts.csv does not carry, for the accounts this run creates."""
        return dict(NO_COVERAGE) if self.accounts_uncovered else {}

    def _accounts_direct(self, path: Path) -> DirectLoad | None:
        """Copy accounts.csv straight into the accounts table while checking it, when the
        table is empty (a first load; see `store.DirectLoad`). The regions and verticals of
        this run are upserted first, so every account's region and vertical id is known; the
        import's transaction still undoes them if any file has a problem."""
        staging = self.staging
        if not staging.enabled or connection.vendor != "postgresql":
            return None
        load = DirectLoad.begin(
            connection,
            Account,
            (
                *ACCOUNT_COLUMNS,
                *copy_defaults(Account, ACCOUNT_FIELDS)[0],
                "created_at",
                "updated_at",
            ),
            expected_rows=file_lines(path),
        )
        if load is None:
            return None
        staging.direct[ACCOUNTS.name] = load
        early = MarketStore(
            connection,
            now=self.now,
            staged=staging.rows,
            optional_present=staging.optional_present,
        )
        for market_file in (REGIONS, VERTICALS):
            if market_file.name in self.rows:
                staging.stored_early[market_file.name] = early.upsert(market_file.name)
        return load

    def _reps(self, path: Path) -> None:
        name = REPS.name
        seen: dict[str, int] = {}
        id_length = max_length(SalesRep, "external_id")
        name_length = max_length(SalesRep, "name")
        email_length = max_length(SalesRep, "email")
        for line, (external_id, label, email, regions) in self._rows(path, REPS):
            count = len(self.problems)
            if self._key(
                name, line, "external_id", external_id, id_length, seen, gettext_noop("external id")
            ):
                self.rep_ids.add(external_id)
            self._text(name, line, "name", label, name_length)
            if self._text(name, line, "email", email, email_length):
                try:
                    self._email(email)
                except ValidationError:
                    self.problem(
                        name,
                        line,
                        "email",
                        _("not an e-mail address: %(value)r") % {"value": email},
                    )
            codes = self._codes(
                name, line, "regions", regions, self.region_codes, gettext_noop("region code")
            )
            if len(self.problems) == count:
                self.staging.add(STAGE_REP, (external_id, label, email))
                for code in codes:
                    self.staging.add(STAGE_REP_REGION, (external_id, code))

    def _partners(self, path: Path) -> None:
        name = PARTNERS.name
        seen: dict[str, int] = {}
        id_length = max_length(Partner, "external_id")
        name_length = max_length(Partner, "name")
        tiers = list(Tier.objects.order_by("rank").values_list("code", flat=True))
        for line, cells in self._rows(path, PARTNERS):
            count = len(self.problems)
            external_id, label, kind, partner_type, tier = cells
            known = self._key(
                name, line, "external_id", external_id, id_length, seen, gettext_noop("external id")
            )
            self._text(name, line, "name", label, name_length)
            kind_ok = self._choice(name, line, "channel_kind", kind, PartnerKind.values)
            self._choice(name, line, "partner_type", partner_type, PartnerType.values)
            self._choice(name, line, "tier", tier, tiers)
            if known and kind_ok:
                self.partner_kinds[external_id] = kind
            if len(self.problems) == count:
                self.staging.add(STAGE_PARTNER, (external_id, label, kind, partner_type, tier))

    def _agreements(self, path: Path) -> None:
        name = AGREEMENTS.name
        seen: dict[str, int] = {}
        id_length = max_length(Agreement, "external_id")
        today = self.today.isoformat()
        for line, cells in self._rows(path, AGREEMENTS):
            count = len(self.problems)
            (
                external_id,
                partner,
                agreement_type,
                start,
                end,
                signed,
                terminated,
                regions,
                verticals,
                exclusive,
            ) = cells
            self._key(
                name, line, "external_id", external_id, id_length, seen, gettext_noop("external id")
            )
            if partner not in self.partner_kinds and PARTNERS.name not in self.unreadable:
                self._unknown(name, line, "partner", partner, gettext_noop("partner external id"))
            self._choice(name, line, "agreement_type", agreement_type, AgreementType.values)
            start_date = self._date(name, line, "start_date", start, required=True)
            end_date = self._date(name, line, "end_date", end, required=True)
            signed_on = self._date(name, line, "signed_on", signed, required=False)
            terminated_on = self._date(name, line, "terminated_on", terminated, required=False)
            for column, value in (
                ("start_date", start_date),
                ("end_date", end_date),
                ("signed_on", signed_on),
                ("terminated_on", terminated_on),
            ):
                if value and not EARLIEST_DATE.isoformat() <= value <= LATEST_DATE.isoformat():
                    self.problem(
                        name,
                        line,
                        column,
                        _("%(day)s is outside %(first)s to %(last)s")
                        % {
                            "day": value,
                            "first": EARLIEST_DATE.isoformat(),
                            "last": LATEST_DATE.isoformat(),
                        },
                    )
            self._not_before(name, line, "end_date", end_date, "start_date", start_date)
            if terminated_on:
                if not signed:
                    self.problem(
                        name, line, "terminated_on", _("set, but the agreement was never signed")
                    )
                self._not_before(
                    name, line, "terminated_on", terminated_on, "start_date", start_date
                )
                if end_date and terminated_on > end_date:
                    self.problem(
                        name,
                        line,
                        "terminated_on",
                        _("%(later)s is after %(other)s %(earlier)s")
                        % {"later": terminated_on, "other": "end_date", "earlier": end_date},
                    )
            region_codes = self._codes(
                name, line, "regions", regions, self.region_codes, gettext_noop("region code")
            )
            vertical_codes = self._codes(
                name,
                line,
                "verticals",
                verticals,
                self.vertical_codes,
                gettext_noop("vertical code"),
            )
            if exclusive not in ("true", "false"):
                self.problem(
                    name,
                    line,
                    "exclusive",
                    _("must be true or false, not %(value)r") % {"value": exclusive},
                )
            if len(self.problems) != count:
                continue
            if not signed_on:
                status = AgreementStatus.DRAFT
            elif terminated_on:
                status = AgreementStatus.TERMINATED
            elif end < today:
                status = AgreementStatus.EXPIRED
            else:
                status = AgreementStatus.ACTIVE
            self.staging.add(
                STAGE_AGREEMENT,
                (
                    external_id,
                    partner,
                    agreement_type,
                    status.value,
                    start,
                    end,
                    signed_on,
                    terminated_on,
                    exclusive == "true",
                ),
            )
            for code in region_codes:
                self.staging.add(STAGE_AGREEMENT_REGION, (external_id, code))
            for code in vertical_codes:
                self.staging.add(STAGE_AGREEMENT_VERTICAL, (external_id, code))

    def _coverage(self, path: Path) -> None:
        name = COVERAGE.name
        seen: dict[str, tuple[str, str, int] | list[tuple[str, str, int]]] = {}
        kinds = ChannelKind.values
        direct, online = ChannelKind.DIRECT.value, ChannelKind.ONLINE.value
        source_length = max_length(CoverageAssignment, "online_source")
        accounts, reps, partner_kinds = self.account_ids, self.rep_ids, self.partner_kinds
        problems = self.problems
        stage = self.staging.add
        # Inline checks, as for accounts: there are more coverage rows than accounts.
        for line, (account, kind, owner, start, end) in self._rows(path, COVERAGE):
            count = len(problems)
            if account not in accounts and not self._account_known(account):
                self._unknown(name, line, "account", account, gettext_noop("account external id"))
            if kind == direct:
                if owner not in reps:
                    self._unknown(name, line, "owner", owner, gettext_noop("rep external id"))
            elif kind == online:
                if not owner or len(owner) > source_length:
                    self._text(name, line, "owner", owner, source_length)
            elif kind in PARTNER_KINDS:
                owner_kind = partner_kinds.get(owner)
                if owner_kind is None and PARTNERS.name in self.unreadable:
                    pass
                elif owner_kind is None:
                    self._unknown(name, line, "owner", owner, gettext_noop("partner external id"))
                elif owner_kind != kind:
                    self.problem(
                        name,
                        line,
                        "owner",
                        other_kind(owner, owner_kind, kind),
                    )
            else:
                self._choice(name, line, "kind", kind, kinds)
            start_date: str | None = start
            if not is_date(start):
                start_date = self._date(name, line, "start_date", start, required=True)
            end_date = end or None
            if end and not is_date(end):
                end_date = self._date(name, line, "end_date", end, required=False)
            if end_date and start_date and end_date < start_date:
                self._not_before(name, line, "end_date", end_date, "start_date", start_date)
            if len(problems) != count:
                continue
            # An owner works an account at most once on any day (the exclusion constraint on
            # coverage); most owners have one row per account, so a list only when repeated.
            key = f"{account}\x1f{kind}\x1f{owner}"
            period = (start, end_date or "9999-12-31", line)
            earlier = seen.get(key)
            if earlier is None:
                seen[key] = period
            else:
                periods = earlier if isinstance(earlier, list) else [earlier]
                clash = next((p for p in periods if p[0] <= period[1] and start <= p[1]), None)
                if clash is not None:
                    self.problem(
                        name,
                        line,
                        "start_date",
                        (
                            _(
                                "duplicate coverage of %(account)r by %(kind)s %(owner)r from "
                                "%(start)s (first on line %(line)d)"
                            )
                            if clash[0] == start
                            else _(
                                "coverage of %(account)r by %(kind)s %(owner)r from %(start)s "
                                "overlaps its coverage from %(earlier)s on line %(line)d"
                            )
                        )
                        % {
                            "account": account,
                            "kind": kind,
                            "owner": owner,
                            "start": start,
                            "earlier": clash[0],
                            "line": clash[2],
                        },
                    )
                    continue
                periods.append(period)
                seen[key] = periods
            stage(STAGE_COVERAGE, (account, kind, owner, start, end_date, line))

    def _registrations(self, path: Path) -> None:
        registrations_validate(self, path)

    def _fx_rates(self, path: Path) -> None:
        fx_rates_validate(self, path)

    def _opportunities(self, path: Path) -> None:
        opportunities_validate(self, path)
