"""accounts.csv read a block of rows at a time, as columns (`market_csv.blocks`): the rows it
stores are the ones the row-by-row checks store, on a first load and on a re-import, and a
file the blocks cannot read as the csv reader does, or with a bad row, goes row by row."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from crm.models import Account
from partners.market_csv import validate
from partners.market_csv.files import ACCOUNTS
from partners.market_csv.validate import MarketValidator

pytestmark = pytest.mark.django_db

GOOD = Path(__file__).parent / "csv" / "good"
HEADER = ",".join(ACCOUNTS.columns)
ROWS = [
    "ACC-1,Acme Bank Ltd,DACH,FIN,enterprise,2024-01-15,,2025-03-01,direct",
    'ACC-2,"Berlin Clinic, GmbH",DACH,HEALTH,mid_market,2024-02-01,,,',
    "ACC-3,The Shanghai Retail Co,EAST_CN,RETAIL,strategic,2024-03-10,2025-06-30,,",
    "ACC-4,上海零售有限公司,NORDICS,HEALTH,smb,2025-01-01,,2025-05-20,partner",
    'ACC-5,"Tab\there \\ and ""quotes""",NORDICS,FIN,smb,2024-02-29,,,',
    "ACC-6,  spaced  out  ,DACH,RETAIL,smb,2024-01-01,2024-01-01,,",
]
# name: (the file's text, whether the blocks read it)
FILES = {
    "plain": ("\n".join([HEADER, *ROWS]) + "\n", True),
    "crlf, no last line break": ("\r\n".join([HEADER, *ROWS]), True),
    "a blank line": ("\n".join([HEADER, *ROWS[:2], "", *ROWS[2:]]) + "\n", False),
    "a name over two lines": (
        "\n".join([HEADER, *ROWS, 'ACC-7,"Two\nlines",DACH,FIN,smb,2024-01-01,,,']) + "\n",
        False,
    ),
    "columns in another order": (
        HEADER.replace("external_id,name", "name,external_id")
        + "\nAcme Bank Ltd,ACC-1,DACH,FIN,enterprise,2024-01-15,,2025-03-01,direct\n",
        False,
    ),
}


def _write(tmp_path: Path, text: str) -> Path:
    directory = tmp_path / "market"
    directory.mkdir(exist_ok=True)
    for name in ("regions.csv", "verticals.csv"):
        (directory / name).write_bytes((GOOD / name).read_bytes())
    (directory / "accounts.csv").write_bytes(text.encode("utf-8"))
    return directory


def _stored() -> list[tuple[Any, ...]]:
    fields = [
        f.attname
        for f in Account._meta.concrete_fields
        if f.name not in ("id", "created_at", "updated_at")
    ]
    return list(Account.objects.order_by("external_id").values_list(*fields))


def _import(directory: Path) -> str:
    out = StringIO()
    call_command("import_csv", str(directory), stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def roads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Which road each accounts.csv took (`blocks`), and a switch that forces rows."""
    taken: dict[str, Any] = {"blocks": [], "force_rows": False}
    original = MarketValidator._accounts_in_blocks

    def in_blocks(self: MarketValidator, path: Path) -> bool:
        read = False if taken["force_rows"] else original(self, path)
        taken["blocks"].append(read)
        return read

    monkeypatch.setattr(MarketValidator, "_accounts_in_blocks", in_blocks)
    # Several blocks per file, so that later blocks follow rows already written.
    monkeypatch.setattr(validate, "ACCOUNT_BLOCK_ROWS", 2)
    return taken


@pytest.mark.parametrize("case", FILES)
def test_blocks_store_what_the_row_checks_store(
    tmp_path: Path, roads: dict[str, Any], case: str
) -> None:
    text, read_in_blocks = FILES[case]
    directory = _write(tmp_path, text)
    roads["force_rows"] = True
    _import(directory)
    by_rows = _stored()
    Account.objects.all().delete()
    roads["force_rows"] = False

    first = _import(directory)  # a first load (PostgreSQL: straight into the empty table)
    assert _stored() == by_rows
    # A re-import: through the staging table, every row found unchanged.
    again = _import(directory)

    assert _stored() == by_rows
    assert roads["blocks"] == [False, read_in_blocks, read_in_blocks]
    rows = len(by_rows)
    assert f"accounts.csv: {rows} rows, created={rows} updated=0 unchanged=0" in first
    assert f"accounts.csv: {rows} rows, created=0 updated=0 unchanged={rows}" in again


def test_a_reimport_in_blocks_updates_what_changed(tmp_path: Path, roads: dict[str, Any]) -> None:
    _import(_write(tmp_path, FILES["plain"][0]))
    changed = [row.replace("Acme Bank Ltd", "Acme Bank AG") for row in ROWS]

    out = _import(_write(tmp_path, "\n".join([HEADER, *changed]) + "\n"))

    assert f"accounts.csv: {len(ROWS)} rows, created=0 updated=1 unchanged={len(ROWS) - 1}" in out
    assert Account.objects.get(external_id="ACC-1").name_key == "acme bank"
    assert roads["blocks"] == [True, True]


# One bad row each, after good rows: every check of the blocks sends the file row by row.
BAD_ROWS = [
    "ACC-1,Again,DACH,FIN,smb,2024-01-01,,,",  # a repeated key
    ",No key,DACH,FIN,smb,2024-01-01,,,",
    "ACC-9," + "x" * 256 + ",DACH,FIN,smb,2024-01-01,,,",
    "ACC-9,,DACH,FIN,smb,2024-01-01,,,",
    "ACC-9,Nowhere,MARS,FIN,smb,2024-01-01,,,",
    "ACC-9,No trade,DACH,MINING,smb,2024-01-01,,,",
    "ACC-9,Huge,DACH,FIN,giant,2024-01-01,,,",
    "ACC-9,Undated,DACH,FIN,smb,,,,",
    "ACC-9,Bad day,DACH,FIN,smb,2023-02-29,,,",
    "ACC-9,Early end,DACH,FIN,smb,2024-01-02,2024-01-01,,",
    "ACC-9,Bad archive,DACH,FIN,smb,2024-01-01,01/02/2024,,",
    "ACC-9,No via,DACH,FIN,smb,2024-01-01,,2024-05-01,",
    "ACC-9,Via only,DACH,FIN,smb,2024-01-01,,,direct",
    "ACC-9,Odd via,DACH,FIN,smb,2024-01-01,,2024-05-01,carrier pigeon",
    "ACC-9,Short,DACH,FIN,smb,2024-01-01,,",
]


def _problems(directory: Path) -> list[str]:
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_csv", str(directory), stdout=StringIO(), stderr=err)
    return err.getvalue().splitlines()


@pytest.mark.parametrize("bad", BAD_ROWS)
def test_a_bad_row_is_worded_as_the_row_checks_word_it(
    tmp_path: Path, roads: dict[str, Any], bad: str
) -> None:
    directory = _write(tmp_path, "\n".join([HEADER, *ROWS[:3], bad, *ROWS[3:]]) + "\n")
    roads["force_rows"] = True
    by_rows = _problems(directory)
    roads["force_rows"] = False

    assert _problems(directory) == by_rows
    assert by_rows and all(problem.startswith("accounts.csv:5: ") for problem in by_rows)
    assert roads["blocks"] == [False, False]
    assert not Account.objects.exists()
