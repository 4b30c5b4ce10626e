"""The database helpers of `crm.sql`."""

from __future__ import annotations

import pytest
from django.db import connection
from psycopg import sql

from crm.sql import as_text, int8_gathered, int8_values


def _gathered(values: str) -> tuple[int, bytes | None]:
    statement = sql.SQL("SELECT count(*), {} FROM (VALUES {}) AS rows (value)").format(
        int8_gathered(sql.Identifier("rows", "value")), sql.SQL(values)
    )
    with connection.cursor() as cursor:
        cursor.execute(as_text(statement))
        count, data = cursor.fetchone()
    return count, None if data is None else bytes(data)


@pytest.mark.postgres
@pytest.mark.django_db
def test_gathered_bigints_come_back_in_the_rows_order() -> None:
    values = [3, -1, 0, 9_007_199_254_740_993, -(2**63), 2**63 - 1]
    count, data = _gathered(", ".join(f"('{value}'::bigint)" for value in values))
    assert int8_values(data, count).tolist() == values


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_null_among_gathered_bigints_is_an_error_not_a_shift() -> None:
    count, data = _gathered("(1::bigint), (NULL), (3)")
    with pytest.raises(ValueError, match="expected 3 bigint values, not 2"):
        int8_values(data, count)


def test_no_row_gathers_no_value() -> None:
    assert int8_values(None, 0).tolist() == []
