from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from partners.market_csv.files import MARKET_FILES

GOOD = Path(__file__).parent / "csv" / "good"

pytestmark = pytest.mark.django_db


def test_it_exports_what_was_imported(tmp_path: Path) -> None:
    call_command("import_csv", str(GOOD), stdout=StringIO())

    call_command("export_csv", str(tmp_path / "out"), stdout=StringIO())

    for market_file in MARKET_FILES:
        exported = (tmp_path / "out" / market_file.name).read_text(encoding="utf-8")
        assert exported == (GOOD / market_file.name).read_text(encoding="utf-8"), market_file.name


def test_it_reimports_its_own_export_unchanged(tmp_path: Path) -> None:
    call_command("import_csv", str(GOOD), stdout=StringIO())
    call_command("export_csv", str(tmp_path), stdout=StringIO())
    out = StringIO()

    call_command("import_csv", str(tmp_path), stdout=out)

    assert "created=0 updated=0" in out.getvalue()
    assert "updated=1" not in out.getvalue()
    assert out.getvalue().count("updated=0") == len(MARKET_FILES)


def test_it_writes_headers_for_an_empty_market(tmp_path: Path) -> None:
    out = StringIO()

    call_command("export_csv", str(tmp_path), stdout=out)

    assert "accounts.csv: 0 rows" in out.getvalue()
    for market_file in MARKET_FILES:
        text = (tmp_path / market_file.name).read_text(encoding="utf-8")
        assert text == ",".join((*market_file.columns, *market_file.optional)) + "\n"
