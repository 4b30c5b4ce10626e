"""A sales manager's day in a real browser, and a rep's narrower view."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from channels.models import CoverageAssignment
from crm.models import ChannelKind
from partners.models import Agreement, AgreementStatus, Partner
from tests.browser.selects import choose
from tests.cast import Cast
from tests.factories import AccountFactory, FeedbackFactory, RegionFactory, VerticalFactory

pytestmark = [pytest.mark.browser, pytest.mark.engine_neutral]

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def test_it_runs_a_partner_from_creation_to_renewal(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page], tmp_path: Path
) -> None:
    region, vertical = RegionFactory(code="east", name="East China"), VerticalFactory(code="retail")
    for index in range(3):
        AccountFactory(name=f"Journey Shop {index}", region=region, vertical=vertical)
    AccountFactory(name="Elsewhere Shop")
    feedback = FeedbackFactory(partner=live_cast.partner_a, subject="Need Chinese docs")
    today = timezone.localdate()
    page = sign_in("manager")

    # A new partner.
    page.goto(f"{live_server.url}/workspace/partners/")
    page.get_by_role("link", name="New partner").click()
    page.get_by_label("Name").fill("Gamma Integrators")
    page.get_by_label("External id").fill("P-GAMMA")
    page.get_by_label("Type").select_option("system_integrator")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=re.compile("Gamma Integrators"))).to_be_visible()
    partner = Partner.objects.get(external_id="P-GAMMA")

    # A draft agreement for East China.
    page.get_by_role("link", name="New agreement").click()
    page.get_by_label("Agreement type").select_option("system_integration")
    page.get_by_label("Start date").fill((today - timedelta(days=1)).isoformat())
    page.get_by_label("End date").fill((today + timedelta(days=364)).isoformat())
    page.get_by_label("Regions").select_option(label="East China")
    page.get_by_role("button", name="Save draft").click()
    expect(page.get_by_text("Draft AGR-")).to_be_visible()

    # Sign it with the PDF and activate it.
    pdf = tmp_path / "signed.pdf"
    pdf.write_bytes(PDF)
    page.get_by_role("link", name="Sign and activate").click()
    page.get_by_label("Signed agreement (PDF)").set_input_files(str(pdf))
    page.get_by_role("button", name="Activate").click()
    expect(page.get_by_text("is signed and active")).to_be_visible()
    expect(page.get_by_text("in force today")).to_be_visible()
    agreement = Agreement.objects.get(partner=partner)
    assert agreement.status == AgreementStatus.ACTIVE and agreement.signed_document

    # Three accounts to the partner, through the account list filter.
    page.goto(f"{live_server.url}/workspace/accounts/?region=east")
    for checkbox in page.get_by_role("checkbox", name=re.compile("Select Journey Shop")).all():
        checkbox.check()
    page.get_by_label("Channel kind").select_option("partner")
    choose(page, "Partner or distributor", "Gamma Integrators")
    page.get_by_role("button", name="Assign").click()
    expect(page.get_by_text("Assigned 3 accounts to Gamma Integrators")).to_be_visible()
    assert CoverageAssignment.objects.filter(partner=partner, kind=ChannelKind.PARTNER).count() == 3

    # Renew the agreement: a linked, pre-filled draft opens.
    page.goto(f"{live_server.url}/workspace/agreements/{agreement.pk}/")
    page.get_by_role("link", name="Renew…").click()
    expect(page.get_by_test_id("renewal-term")).to_be_visible()
    assert not Agreement.objects.filter(renews=agreement).exists(), "nothing before confirming"
    page.get_by_role("button", name="Create the renewal draft").click()
    expect(page.get_by_text(f"created from {agreement.external_id}")).to_be_visible()
    renewal = Agreement.objects.get(renews=agreement)
    expect(page.get_by_label("Start date")).to_have_value(renewal.start_date.isoformat())

    # Reply to a partner's feedback.
    page.goto(f"{live_server.url}/workspace/feedback/{feedback.pk}/")
    page.get_by_label("Message").first.fill("We will publish them next month.")
    page.get_by_role("button", name="Send reply to partner").click()
    expect(page.get_by_test_id("reply")).to_contain_text("We will publish them next month.")


def test_it_shows_a_rep_only_their_accounts(
    live_server: LiveServer, live_cast: Cast, sign_in: Callable[[str], Page]
) -> None:
    mine = AccountFactory(name="Rep Owned Ltd")
    AccountFactory(name="Someone Elses Ltd")
    CoverageAssignment.objects.create(
        account=mine,
        kind="direct",
        rep=live_cast.rep,
        start_date=timezone.localdate() - timedelta(days=30),
    )
    page = sign_in("rep")
    expect(page).to_have_url(re.compile(r"/workspace/$"))
    expect(page.get_by_test_id("rep-accounts")).to_have_text("1")
    page.get_by_role("link", name="All my accounts").click()
    expect(page).to_have_url(re.compile(r"/workspace/my-accounts/$"))
    expect(page.get_by_role("link", name="Rep Owned Ltd")).to_be_visible()
    expect(page.get_by_text("Someone Elses Ltd")).to_have_count(0)
    expect(page.get_by_role("button", name="Assign")).to_have_count(0)
