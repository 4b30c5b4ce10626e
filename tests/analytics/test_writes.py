from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import psycopg
import pytest
from django.db import DataError, IntegrityError, connection, transaction
from psycopg import sql

from analytics.metrics import PARTNER_COLUMNS
from analytics.models import PartnerRollup, PartnerSnapshot
from analytics.writes import (
    Rows,
    RowsBuffer,
    RowsStream,
    _copy,
    _copy_text,
    _staging_table,
    _week_key,
    _week_rewrite,
    copy_binary_into,
    guarded_anti_join,
    insert_rows,
    replace_week_rows,
    replace_week_tables,
    replace_weeks_rows,
    rewrite_week_rows,
)
from crm.sql import as_text
from tests.factories import PartnerFactory

pytestmark = pytest.mark.django_db

FIELDS = ["week", "as_of", "final", *PARTNER_COLUMNS]


def _rows(week: str, partner_ids: list[int], *, as_arrays: bool) -> Rows:
    """Partner snapshot rows with awkward values: text beyond ASCII, a tab, a backslash and a
    newline; a missing mean (NaN in an array, None in a list) and an NPS of 0.1 + 0.2."""
    names = ["Ålesund Ÿ 合作伙伴", "tab\there\\back", "new\nline"]
    columns: dict[str, Any] = {
        "external_id": [f"X-{number}" for number in range(3)],
        "name": names,
        "channel_kind": ["partner", "distribution", "partner"],
        "partner_id": partner_ids,
        "covered_accounts": [0, 7, 2**31 - 1],
        "converted_accounts": [0, 3, 1],
        "agreements_in_force": [1, 0, 2],
        "feedback_count": [0, 2, 5],
        "satisfaction_mean": [np.nan if as_arrays else None, 4.5, 1 / 3],
        "nps": [0.1 + 0.2, -100.0, 100.0],
        "nps_responses": [1, 2, 3],
        "nps_promoters": [1, 0, 3],
        "nps_detractors": [0, 2, 0],
    }
    if as_arrays:
        columns = {name: np.asarray(values) for name, values in columns.items()}
    columns.update(week=[week] * 3, as_of=[date(2026, 11, 15)] * 3, final=[True] * 3)
    return Rows(columns, 3)


def _stored(week: str) -> list[tuple[Any, ...]]:
    return list(
        PartnerSnapshot.objects.filter(week=week)
        .order_by("external_id")
        .values_list(*[field for field in FIELDS if field != "week"])
    )


def test_rows_gathered_for_many_weeks_are_stored_as_rows_inserted_one_by_one() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    insert_rows(PartnerSnapshot, _rows("2026-W45", partner_ids, as_arrays=False))
    buffer = RowsBuffer()
    buffer.add(PartnerSnapshot, _rows("2026-W46", partner_ids, as_arrays=True))
    buffer.add(PartnerSnapshot, _rows("2026-W47", partner_ids, as_arrays=False))
    buffer.insert()
    inserted = _stored("2026-W45")
    assert inserted[0][4] == "Ålesund Ÿ 合作伙伴"
    assert inserted[0][10] is None and inserted[0][11] == 0.1 + 0.2
    assert _stored("2026-W46") == inserted
    assert _stored("2026-W47") == inserted


@pytest.mark.postgres
def test_a_value_out_of_its_columns_range_is_refused() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    rows = _rows("2026-W46", partner_ids, as_arrays=True)
    rows = Rows({**rows.columns, "covered_accounts": np.array([0, 1, 2**31])}, rows.count)
    buffer = RowsBuffer()
    with pytest.raises(Exception, match="range"):
        buffer.add(PartnerSnapshot, rows)
        buffer.insert()


def test_rows_streamed_for_many_weeks_are_stored_as_rows_inserted_one_by_one() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    insert_rows(PartnerSnapshot, _rows("2026-W45", partner_ids, as_arrays=False))
    with RowsStream(models=[PartnerSnapshot]) as stream:
        stream.add(PartnerSnapshot, _rows("2026-W46", partner_ids, as_arrays=True))
        stream.add(PartnerSnapshot, _rows("2026-W47", partner_ids, as_arrays=False))
        stream.insert()
    inserted = _stored("2026-W45")
    assert _stored("2026-W46") == inserted
    assert _stored("2026-W47") == inserted


def test_rows_streamed_with_the_names_of_the_week_before_or_others_are_stored_as_given() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    renamed = _rows("2026-W48", partner_ids, as_arrays=True)
    names = np.asarray(["Ålesund Ÿ 合作伙伴", "tab\there\\back", "renamed"], dtype=object)
    renamed = Rows({**renamed.columns, "name": names}, 3)
    with RowsStream(models=[PartnerSnapshot]) as stream:
        for week in ("2026-W46", "2026-W47"):
            stream.add(PartnerSnapshot, _rows(week, partner_ids, as_arrays=True))
        stream.add(PartnerSnapshot, renamed)
        stream.insert()
    assert _stored("2026-W47") == _stored("2026-W46")
    stored = PartnerSnapshot.objects.filter(week="2026-W48").order_by("external_id")
    assert list(stored.values_list("name", flat=True)) == names.tolist()


@pytest.mark.postgres
def test_a_streamed_row_of_no_partner_is_refused_when_its_rows_are_inserted() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(2)]
    missing = max(partner_ids) + 1000
    with (
        pytest.raises(IntegrityError),
        transaction.atomic(),
        RowsStream(models=[PartnerSnapshot]) as stream,
    ):
        stream.add(PartnerSnapshot, _rows("2026-W46", [*partner_ids, missing], as_arrays=True))
        stream.insert()
    assert not PartnerSnapshot.objects.filter(week="2026-W46").exists()


@pytest.mark.postgres
def test_rows_rewritten_in_place_are_stored_as_rows_inserted_one_by_one() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(4)]
    insert_rows(PartnerSnapshot, _rows("2026-W45", partner_ids[1:], as_arrays=False))
    # The week had the first three partners, with other figures; the last one is new to it.
    stale = _rows("2026-W46", partner_ids[:3], as_arrays=False)
    stale = Rows({**stale.columns, "covered_accounts": [5, 6, 7], "nps": [None] * 3}, 3)
    insert_rows(PartnerSnapshot, stale)
    created = PartnerSnapshot.objects.get(week="2026-W46", partner_id=partner_ids[1]).created_at
    with transaction.atomic(), RowsStream(models=[PartnerSnapshot]) as stream:
        stream.rewrite(
            PartnerSnapshot,
            _rows("2026-W46", partner_ids[1:], as_arrays=True),
            week="2026-W46",
            had=np.asarray(partner_ids[:3]),
        )
        stream.insert()
    assert _stored("2026-W46") == _stored("2026-W45")
    assert not PartnerSnapshot.objects.filter(week="2026-W46", partner_id=partner_ids[0]).exists()
    kept = PartnerSnapshot.objects.get(week="2026-W46", partner_id=partner_ids[1])
    assert kept.created_at == created


@pytest.mark.postgres
def test_rows_copied_as_text_are_stored_as_rows_copied_in_binary() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    text = _copy_text(PartnerSnapshot, _rows("2026-W45", partner_ids, as_arrays=False))
    _copy(PartnerSnapshot, text)
    insert_rows(PartnerSnapshot, _rows("2026-W46", partner_ids, as_arrays=False))
    assert _stored("2026-W46") == _stored("2026-W45")


def _rewritten(week: str, partner_ids: list[int]) -> Rows:
    """`_rows` of `partner_ids`, as a later run of the week finds them: a day later, final,
    the second partner's counts moved and its mean gone."""
    rows = _rows(week, partner_ids, as_arrays=True)
    columns = dict(rows.columns)
    columns.update(
        as_of=[date(2026, 11, 16)] * 3,
        covered_accounts=np.array([0, 8, 2**31 - 1]),
        satisfaction_mean=np.array([np.nan, np.nan, 1 / 3]),
    )
    return Rows(columns, rows.count)


def test_a_week_written_again_holds_the_rows_given_with_partners_joining_and_leaving() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(4)]
    insert_rows(PartnerSnapshot, _rows("2026-W45", partner_ids[:3], as_arrays=False))
    replace_week_rows(
        PartnerSnapshot, "2026-W46", _rows("2026-W46", partner_ids[:3], as_arrays=True)
    )
    # The first partner leaves the week, the fourth joins it, the second's figures change.
    replace_week_rows(PartnerSnapshot, "2026-W46", _rewritten("2026-W46", partner_ids[1:]))
    insert_rows(PartnerSnapshot, _rewritten("2026-W47", partner_ids[1:]))
    assert _stored("2026-W46") == _stored("2026-W47")
    assert (
        sorted(PartnerSnapshot.objects.filter(week="2026-W46").values_list("partner_id", flat=True))
        == partner_ids[1:]
    )
    assert len(_stored("2026-W45")) == 3  # another week's rows stay as they were
    replace_week_rows(PartnerSnapshot, "2026-W46", Rows({}, 0))
    assert not PartnerSnapshot.objects.filter(week="2026-W46").exists()
    assert len(_stored("2026-W45")) == 3


def test_weeks_written_again_together_hold_what_each_written_again_alone_holds() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(4)]
    for week in ("2026-W44", "2026-W45", "2026-W46"):
        insert_rows(PartnerSnapshot, _rows(week, partner_ids[:3], as_arrays=False))
    kept = dict(
        PartnerSnapshot.objects.filter(week="2026-W45").values_list("partner_id", "created_at")
    )
    # W44: the first partner leaves, the fourth joins, the second's figures change; W45 as it
    # was; W46 loses every row; W47, a week without rows, gets its first.
    replace_weeks_rows(
        PartnerSnapshot,
        {
            "2026-W44": _rewritten("2026-W44", partner_ids[1:]),
            "2026-W45": _rows("2026-W45", partner_ids[:3], as_arrays=True),
            "2026-W46": Rows({}, 0),
            "2026-W47": _rewritten("2026-W47", partner_ids[1:]),
        },
    )
    insert_rows(PartnerSnapshot, _rewritten("2026-W48", partner_ids[1:]))
    insert_rows(PartnerSnapshot, _rows("2026-W49", partner_ids[:3], as_arrays=False))
    assert _stored("2026-W44") == _stored("2026-W47") == _stored("2026-W48")
    assert _stored("2026-W45") == _stored("2026-W49")
    assert not PartnerSnapshot.objects.filter(week="2026-W46").exists()
    # On PostgreSQL a week's rows are rewritten in place: a row keeps its creation.
    assert connection.vendor != "postgresql" or (
        dict(
            PartnerSnapshot.objects.filter(week="2026-W45").values_list("partner_id", "created_at")
        )
        == kept
    )


def _rollups(week: str, partners: list[int]) -> Rows:
    kinds = ["", "partner", "distribution"][: len(partners)]
    count = len(kinds)
    return Rows(
        {
            "week": [week] * count,
            "as_of": [date(2026, 11, 15)] * count,
            "final": [True] * count,
            "channel_kind": kinds,
            "partners": partners,
            "active_partners": partners,
            "agreements_in_force": [2] * count,
            "feedback_count": [5] * count,
            "nps_responses": [3] * count,
            "nps_promoters": [2] * count,
            "nps_detractors": [1] * count,
            "satisfaction_weighted": [0.1 + 0.2] * count,
        },
        count,
    )


def _stored_rollups(week: str) -> list[tuple[Any, ...]]:
    return list(
        PartnerRollup.objects.filter(week=week)
        .order_by("channel_kind")
        .values_list("channel_kind", "as_of", "final", "partners", "satisfaction_weighted")
    )


def test_tables_written_together_hold_what_each_written_alone_holds() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(4)]
    # W46 has rows of both tables already (rewritten), W47 has none (its first rows).
    for week in ("2026-W46", "2026-W48"):
        insert_rows(PartnerSnapshot, _rows(week, partner_ids[:3], as_arrays=False))
        insert_rows(PartnerRollup, _rollups(week, [3, 2, 1]))
    before = dict(PartnerSnapshot.objects.filter(week="2026-W46").values_list("partner_id", "id"))
    for week in ("2026-W46", "2026-W47"):
        replace_week_tables(
            week,
            {
                PartnerSnapshot: _rewritten(week, partner_ids[1:]),
                PartnerRollup: _rollups(week, [4, 3]),
            },
        )
    replace_week_rows(PartnerSnapshot, "2026-W48", _rewritten("2026-W48", partner_ids[1:]))
    replace_week_rows(PartnerRollup, "2026-W48", _rollups("2026-W48", [4, 3]))
    assert _stored("2026-W46") == _stored("2026-W47") == _stored("2026-W48")
    assert _stored_rollups("2026-W46") == _stored_rollups("2026-W47") == _stored_rollups("2026-W48")
    assert len(_stored_rollups("2026-W47")) == 2
    # On PostgreSQL a week's rows are rewritten in place: a row keeps its id.
    kept = dict(PartnerSnapshot.objects.filter(week="2026-W46").values_list("partner_id", "id"))
    assert connection.vendor != "postgresql" or all(
        kept[partner] == before[partner] for partner in partner_ids[1:3]
    )


def test_a_table_refused_among_tables_written_together_leaves_none_written() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    insert_rows(PartnerRollup, _rollups("2026-W46", [3, 2, 1]))
    stored = _stored_rollups("2026-W46")
    refused = _rows("2026-W46", partner_ids, as_arrays=True)
    refused.columns["covered_accounts"][0] = -1  # a count never negative
    # Django's error, or the driver's where its cursor copies the rows.
    with pytest.raises((IntegrityError, psycopg.IntegrityError)), transaction.atomic():
        replace_week_tables(
            "2026-W46", {PartnerRollup: _rollups("2026-W46", [9, 9]), PartnerSnapshot: refused}
        )
    assert _stored_rollups("2026-W46") == stored
    assert not PartnerSnapshot.objects.filter(week="2026-W46").exists()


@pytest.mark.postgres
def test_a_week_written_again_keeps_its_rows_and_leaves_unchanged_rows_alone() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    replace_week_rows(PartnerSnapshot, "2026-W46", _rows("2026-W46", partner_ids, as_arrays=True))
    before = dict(PartnerSnapshot.objects.filter(week="2026-W46").values_list("partner_id", "id"))
    stamps = dict(
        PartnerSnapshot.objects.filter(week="2026-W46").values_list("partner_id", "updated_at")
    )
    replace_week_rows(PartnerSnapshot, "2026-W46", _rows("2026-W46", partner_ids, as_arrays=False))
    rows = PartnerSnapshot.objects.filter(week="2026-W46")
    assert dict(rows.values_list("partner_id", "id")) == before
    assert dict(rows.values_list("partner_id", "updated_at")) == stamps
    replace_week_rows(PartnerSnapshot, "2026-W46", _rewritten("2026-W46", partner_ids))
    assert dict(rows.values_list("partner_id", "id")) == before
    assert rows.get(partner_id=partner_ids[1]).covered_accounts == 8


@pytest.mark.postgres
def test_a_weeks_rows_sent_as_arrays_are_stored_as_a_week_written_again() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(4)]
    stale = _rows("2026-W46", partner_ids[:3], as_arrays=False)
    stale = Rows({**stale.columns, "covered_accounts": [5, 6, 7], "nps": [None] * 3}, 3)
    insert_rows(PartnerSnapshot, stale)
    rows = PartnerSnapshot.objects.filter(week="2026-W46")
    created = rows.get(partner_id=partner_ids[1]).created_at
    # The first partner leaves the week, the fourth joins it; the others' rows all changed.
    rewrite_week_rows(
        PartnerSnapshot,
        "2026-W46",
        _rows("2026-W46", partner_ids[1:], as_arrays=True),
        gone=[partner_ids[0]],
    )
    insert_rows(PartnerSnapshot, _rows("2026-W45", partner_ids[1:], as_arrays=False))
    assert _stored("2026-W46") == _stored("2026-W45")
    assert not rows.filter(partner_id=partner_ids[0]).exists()
    assert rows.get(partner_id=partner_ids[1]).created_at == created
    # Sent again unchanged, a row is left as it is.
    stamps = dict(rows.values_list("partner_id", "updated_at"))
    rewrite_week_rows(
        PartnerSnapshot, "2026-W46", _rows("2026-W46", partner_ids[1:], as_arrays=False), gone=[]
    )
    assert dict(rows.values_list("partner_id", "updated_at")) == stamps


@pytest.mark.postgres
def test_a_text_too_long_for_its_column_is_refused_when_sent_as_arrays() -> None:
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    insert_rows(PartnerSnapshot, _rows("2026-W46", partner_ids, as_arrays=False))
    rows = _rows("2026-W46", partner_ids, as_arrays=False)
    too_long = Rows({**rows.columns, "channel_kind": ["partner" * 4] * 3}, 3)
    with pytest.raises(DataError), transaction.atomic():
        rewrite_week_rows(PartnerSnapshot, "2026-W46", too_long, gone=[])


@pytest.mark.postgres
def test_keys_new_to_a_week_are_added_by_one_look_at_the_table_whatever_its_statistics() -> None:
    week = "2026-W46"
    partner_ids = [PartnerFactory().pk for _ in range(3)]
    # Statistics that call the table empty, as when it was analyzed before its first rows.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE analytics_partnersnapshot")
    staged = sql.Identifier("staged_rows")
    key = _week_key(PartnerSnapshot)
    assert key is not None
    with connection.cursor() as cursor:
        for statement in _staging_table(PartnerSnapshot, staged):
            cursor.execute(as_text(statement))
    copy_binary_into(staged, PartnerSnapshot, [_rows(week, partner_ids, as_arrays=True)])
    added = _week_rewrite(PartnerSnapshot, week, key, staged).added

    plans = []
    with connection.cursor() as cursor:
        for step in guarded_anti_join(added):
            if step is added:
                cursor.execute("EXPLAIN " + as_text(step))
                plans.append("\n".join(line for (line,) in cursor.fetchall()))
            cursor.execute(as_text(step))
        cursor.execute("SHOW enable_nestloop")
        (nested_loops,) = cursor.fetchone()

    # The stored keys hashed or merged once, not scanned again for every row inserted.
    assert "Anti Join" in plans[0] and "Nested Loop" not in plans[0]
    assert nested_loops == "on"  # as it was, for the statements after it
    stored = PartnerSnapshot.objects.filter(week=week).values_list("partner_id", flat=True)
    assert sorted(stored) == sorted(partner_ids)
