from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from crm.models import SizeBand
from tests.cast import Cast, signed_in
from tests.factories import AccountFactory, AgreementFactory, FeedbackFactory, RegionFactory


def _csv_rows(response: object) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.reader(io.StringIO(body)))


class TestListExports:
    def test_it_exports_the_filtered_account_list_as_csv(self, cast: Cast) -> None:
        east = RegionFactory(code="east")
        AccountFactory(external_id="A-1", region=east, size_band=SizeBand.ENTERPRISE)
        AccountFactory(external_id="A-2", region=east, size_band=SizeBand.SMB)
        AccountFactory(external_id="A-3")
        response = signed_in(cast.manager).get(
            "/workspace/accounts/?region=east&size_band=enterprise&format=csv"
        )
        assert response["Content-Type"].startswith("text/csv")
        assert "attachment" in response["Content-Disposition"]
        rows = _csv_rows(response)
        assert rows[0][:5] == ["External id", "Name", "Region", "Vertical", "Size band"]
        assert [row[0] for row in rows[1:]] == ["A-1"]
        # Names and labels, not codes.
        assert rows[1][2] == east.name and rows[1][4] == "Enterprise"

    def test_it_exports_xlsx_with_the_same_rows(self, cast: Cast) -> None:
        AgreementFactory(external_id="AG-1", partner=cast.partner_a)
        AgreementFactory(external_id="AG-2", partner=cast.partner_b)
        response = signed_in(cast.executive).get("/workspace/agreements/?q=Alpha&format=xlsx")
        workbook = load_workbook(io.BytesIO(b"".join(response.streaming_content)))
        rows = list(workbook.active.iter_rows(values_only=True))
        assert rows[0][0] == "External id" and [r[0] for r in rows[1:]] == ["AG-1"]
        assert rows[1][3] == "Reseller agreement" and rows[1][4] == "Active"

    def test_it_neutralises_spreadsheet_formulas_in_text(self, cast: Cast) -> None:
        FeedbackFactory(partner=cast.partner_a, subject='=HYPERLINK("http://evil","x")')
        rows = _csv_rows(signed_in(cast.manager).get("/workspace/feedback/?format=csv"))
        assert rows[1][3].startswith("'=")

    def test_it_neutralises_formulas_behind_a_leading_tab_or_carriage_return(
        self, cast: Cast
    ) -> None:
        for lead in ("\t", "\r"):
            FeedbackFactory(partner=cast.partner_a, subject=f"{lead}=cmd|' /C calc'!A0")
        rows = _csv_rows(signed_in(cast.manager).get("/workspace/feedback/?format=csv"))
        assert sorted(row[3][:2] for row in rows[1:]) == ["'\t", "'\r"]

    def test_it_scopes_a_reps_export_to_their_accounts(self, cast: Cast) -> None:
        AccountFactory(external_id="NOT-MINE")
        rows = _csv_rows(signed_in(cast.rep_user).get("/workspace/my-accounts/?format=csv"))
        assert rows[1:] == []

    def test_it_exports_partners_and_reps(self, cast: Cast) -> None:
        rows = _csv_rows(signed_in(cast.manager).get("/workspace/partners/?format=csv"))
        assert {row[0] for row in rows[1:]} == {"P-ALPHA", "P-BETA"}
        rows = _csv_rows(signed_in(cast.manager).get("/workspace/reps/?format=csv"))
        assert rows[0] == ["External id", "Name", "E-mail", "Regions", "Active"] and len(rows) == 2
        assert rows[1][4] == "yes"

    def test_it_writes_the_headers_and_labels_in_the_readers_language(self, cast: Cast) -> None:
        from django.conf import settings
        from django.utils import translation

        AccountFactory(external_id="A-1", size_band=SizeBand.SMB)
        client = signed_in(cast.manager)
        client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
        rows = _csv_rows(client.get("/workspace/accounts/?format=csv"))
        with translation.override("zh-hans"):
            expected = [str(translation.gettext(word)) for word in ("External id", "Name")]
            smb = str(SizeBand.SMB.label)
        assert rows[0][:2] == expected and expected != ["External id", "Name"]
        assert rows[1][4] == smb
