from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.names import company_name_key, company_name_keys, website_domain

# Words and characters a batch of names is made of: legal forms, "the", separators, a line
# break, full-width and Chinese text.
NAME_PARTS = st.sampled_from(
    [
        "Acme",
        "ltd",
        "Co.",
        "GmbH",
        "&",
        "KG",
        "The",
        "the",
        " ",
        "  ",
        ",",
        "-",
        "_",
        "\t",
        "\n",
        "x" * 130,
        "Ｌｔｄ",
        "有限公司",
        "9",
    ]
)


class TestCompanyNameKey:
    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("Golden Health 12 Co., Ltd.", "GOLDEN HEALTH 12 LIMITED"),
            ("Acme GmbH & Co. KG", "acme"),
            ("The Acme Corporation", "Acme Corp"),
            ("Ａｃｍｅ　Ｌｔｄ", "acme ltd"),  # full-width letters and space
            ("北京智源科技有限公司", "北京智源科技"),
            ("北京智源科技股份有限公司", "北京智源科技"),
            ("Blue-Sky Retail", "blue sky retail"),
        ],
    )
    def test_it_gives_spellings_of_one_company_one_key(self, first: str, second: str) -> None:
        assert company_name_key(first) == company_name_key(second)

    @pytest.mark.parametrize(
        ("first", "second"),
        [
            ("Acme Retail", "Acme Logistics"),
            ("Co-operative Bank", "Operative Bank"),
            ("Account 12", "Account 120"),
        ],
    )
    def test_it_keeps_different_companies_apart(self, first: str, second: str) -> None:
        assert company_name_key(first) != company_name_key(second)

    def test_it_never_empties_a_name_made_of_legal_forms(self) -> None:
        assert company_name_key("Co Ltd") == "co ltd"
        assert company_name_key("The") == "the"
        assert company_name_key("有限公司") == "有限公司"

    def test_it_gives_blank_names_an_empty_key(self) -> None:
        assert company_name_key("") == ""
        assert company_name_key(" ,. ") == ""

    def test_a_batch_gets_each_name_its_key(self) -> None:
        names = ["The Acme Corporation", "Acme GmbH & Co. KG", "Co Ltd", "The", "", " ,. "]
        names += [f"Account {n}" for n in range(20)] + ["  Blue-Sky  Retail  ", "the the ltd"]
        assert company_name_keys(names) == [company_name_key(name) for name in names]

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.lists(NAME_PARTS, max_size=6).map("".join), max_size=30))
    def test_a_batch_of_any_names_gets_each_its_key(self, names: list[str]) -> None:
        assert company_name_keys(names) == [company_name_key(name) for name in names]


class TestWebsiteDomain:
    @pytest.mark.parametrize(
        ("website", "domain"),
        [
            ("acme.com", "acme.com"),
            ("https://www.Acme.com/about?x=1", "acme.com"),
            ("http://shop.acme.co.uk:8080", "shop.acme.co.uk"),
            ("WWW.ACME.COM.", "acme.com"),
            ("https://bücher.de", "xn--bcher-kva.de"),
            ("", ""),
            ("not a website", ""),
            ("localhost", ""),
            ("http://192.168.1.1/", ""),
            ("https://", ""),
            ("http://[::1", ""),
        ],
    )
    def test_it_reads_the_host_of_a_web_address(self, website: str, domain: str) -> None:
        assert website_domain(website) == domain
