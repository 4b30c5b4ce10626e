from __future__ import annotations

import re
from datetime import timedelta

from django.utils import timezone
from django.utils.formats import date_format

from crm.models import Account
from partners.models import AgreementStatus
from partners.services import agreement_terminate
from tests.cast import Cast, signed_in
from tests.factories import AgreementFactory, FeedbackFactory, VerticalFactory


class TestPortalHome:
    def test_it_shows_a_partner_user_only_their_own_agreements_and_feedback(
        self, cast: Cast
    ) -> None:
        today = timezone.localdate()
        AgreementFactory(
            partner=cast.partner_a, external_id="AG-OURS", start_date=today - timedelta(days=10)
        )
        AgreementFactory(
            partner=cast.partner_b, external_id="AG-THEIRS", start_date=today - timedelta(days=10)
        )
        FeedbackFactory(partner=cast.partner_a, subject="Our feedback")
        FeedbackFactory(partner=cast.partner_b, subject="Their feedback")

        client = signed_in(cast.partner_a_user)
        for path in ["/portal/", "/portal/agreements/", "/portal/feedback/"]:
            html = client.get(path).content.decode()
            assert "AG-THEIRS" not in html and "Their feedback" not in html, path
            assert cast.partner_b.name not in html, path
        assert "AG-OURS" in client.get("/portal/").content.decode()
        assert "AG-OURS" in client.get("/portal/agreements/").content.decode()
        assert "Our feedback" in client.get("/portal/feedback/").content.decode()

    def test_it_does_not_show_drafts_being_prepared_for_the_partner(self, cast: Cast) -> None:
        AgreementFactory(
            partner=cast.partner_a,
            external_id="AG-DRAFT",
            status=AgreementStatus.DRAFT,
            signed_on=None,
        )
        html = signed_in(cast.partner_a_user).get("/portal/agreements/").content.decode()
        assert "AG-DRAFT" not in html

    def test_it_is_not_found_for_internal_users(self, cast: Cast) -> None:
        assert signed_in(cast.manager).get("/portal/").status_code == 404


class TestInternalPages:
    def test_it_hides_every_internal_page_from_partner_users(self, cast: Cast) -> None:
        agreement = AgreementFactory(partner=cast.partner_a)
        client = signed_in(cast.partner_a_user)
        for path in [
            "/workspace/",
            "/workspace/partners/",
            "/workspace/distributors/",
            f"/workspace/partners/{cast.partner_a.pk}/",
            "/workspace/agreements/",
            f"/workspace/agreements/{agreement.pk}/",
            "/workspace/feedback/",
            "/workspace/reps/",
            "/dashboard/",
        ]:
            assert client.get(path).status_code == 404, path

    def test_it_shows_an_agreement_with_its_history(self, cast: Cast) -> None:
        agreement = AgreementFactory(partner=cast.partner_a, external_id="AG-HIST")
        agreement.notice_days = 60
        agreement.save()
        html = (
            signed_in(cast.manager).get(f"/workspace/agreements/{agreement.pk}/").content.decode()
        )
        assert "AG-HIST" in html
        assert html.count("Changed") + html.count("Created") >= 2

    def test_the_history_says_each_change_from_what_to_what(self, cast: Cast) -> None:
        from datetime import date

        from partners.services import AgreementTerms, agreement_update_draft
        from tests.factories import RegionFactory

        draft = AgreementFactory(
            partner=cast.partner_a, status=AgreementStatus.DRAFT, signed_on=None, notice_days=30
        )
        terms = AgreementTerms.of(draft)
        terms.notice_days, terms.end_date = 60, date(2025, 6, 30)
        terms.regions = [RegionFactory(name="East China")]
        agreement_update_draft(agreement=draft, terms=terms, by=cast.manager)
        html = signed_in(cast.manager).get(f"/workspace/agreements/{draft.pk}/").content.decode()
        history = html[html.index('data-testid="history"') :]
        assert re.search(r"Notice days</span>: <span[^>]*>30</span> → 60", history)
        old_end = date_format(date(2025, 12, 31))
        assert f'End date</span>: <span class="text-muted">{old_end}</span> → ' in history
        assert "All regions</span> → East China" in history

    def test_it_filters_agreements_by_status(self, cast: Cast) -> None:
        AgreementFactory(external_id="AG-ACTIVE")
        AgreementFactory(external_id="AG-DRAFTED", status=AgreementStatus.DRAFT, signed_on=None)
        html = signed_in(cast.manager).get("/workspace/agreements/?status=draft").content.decode()
        assert "AG-DRAFTED" in html and "AG-ACTIVE" not in html


class TestTerminatedAgreements:
    """Status, effective end and termination date follow one rule wherever an agreement shows."""

    def _terminated(self, cast: Cast) -> object:
        today = timezone.localdate()
        agreement = AgreementFactory(
            partner=cast.partner_a,
            external_id="AG-ENDED",
            start_date=today - timedelta(days=100),
            end_date=today + timedelta(days=265),
            verticals=[VerticalFactory(code="fin", name="Finance")],
        )
        agreement_terminate(agreement=agreement, terminated_on=today, reason="Merger", by=None)
        return agreement

    def test_the_portal_home_shows_the_termination_not_the_old_end_and_notice(
        self, cast: Cast
    ) -> None:
        agreement = self._terminated(cast)
        today = timezone.localdate()
        html = signed_in(cast.partner_a_user).get("/portal/").content.decode()
        row = html[html.index("AG-ENDED") : html.index("</tr>", html.index("AG-ENDED"))]
        assert f"Terminated on {date_format(today)}" in row
        assert date_format(agreement.end_date) not in row
        notice = agreement.end_date - timedelta(days=agreement.notice_days)
        assert date_format(notice) not in row

    def test_the_portal_agreements_show_the_termination_date_and_verticals(
        self, cast: Cast
    ) -> None:
        self._terminated(cast)
        html = signed_in(cast.partner_a_user).get("/portal/agreements/").content.decode()
        assert f"Terminated on {date_format(timezone.localdate())}" in html
        assert "Finance" in html

    def test_the_workspace_lists_end_it_on_its_termination_date(self, cast: Cast) -> None:
        agreement = self._terminated(cast)
        client = signed_in(cast.manager)
        for path in ["/workspace/agreements/", f"/workspace/partners/{cast.partner_a.pk}/"]:
            html = client.get(path).content.decode()
            row = html[html.index("AG-ENDED") : html.index("</tr>", html.index("AG-ENDED"))]
            assert f"Terminated on {date_format(timezone.localdate())}" in row, path
            assert date_format(agreement.end_date) not in row, path


class TestPortalAccounts:
    def test_it_flags_the_accounts_outside_the_partners_agreements_in_force(
        self, cast: Cast
    ) -> None:
        from channels.models import CoverageAssignment
        from tests.factories import AccountFactory, RegionFactory

        today = timezone.localdate()
        east, west = RegionFactory(code="east"), RegionFactory(code="west")
        AgreementFactory(
            partner=cast.partner_a,
            regions=[east],
            start_date=today - timedelta(days=10),
            end_date=today + timedelta(days=300),
        )
        inside = AccountFactory(name="Inside Co", region=east)
        outside = AccountFactory(name="Outside Co", region=west)
        for account in (inside, outside):
            CoverageAssignment.objects.create(
                account=account, kind="partner", partner=cast.partner_a, start_date=today
            )
        html = signed_in(cast.partner_a_user).get("/portal/accounts/").content.decode()
        rows = {
            name: html[html.index(name) : html.index("</tr>", html.index(name))]
            for name in ("Inside Co", "Outside Co")
        }
        assert 'data-testid="outside-agreement"' in rows["Outside Co"]
        assert 'data-testid="outside-agreement"' not in rows["Inside Co"]
        assert 'data-testid="outside-note"' in html and "1 of your accounts lies outside" in html

    def test_it_flags_nothing_when_an_agreement_in_force_grants_every_segment(
        self, cast: Cast
    ) -> None:
        from channels.models import CoverageAssignment
        from tests.factories import AccountFactory, RegionFactory

        today = timezone.localdate()
        east, west = RegionFactory(code="east"), RegionFactory(code="west")
        for regions in ([east], []):  # one agreement for the east, one for everywhere
            AgreementFactory(
                partner=cast.partner_a,
                regions=regions,
                start_date=today - timedelta(days=10),
                end_date=today + timedelta(days=300),
            )
        west_account = AccountFactory(name="West Co", region=west)
        for start in (today - timedelta(days=40), today):  # two assignments, one account
            CoverageAssignment.objects.create(
                account=west_account,
                kind="partner",
                partner=cast.partner_a,
                start_date=start,
                end_date=start + timedelta(days=20) if start < today else None,
            )
        html = signed_in(cast.partner_a_user).get("/portal/accounts/").content.decode()
        assert "West Co" in html
        assert 'data-testid="outside-agreement"' not in html
        assert 'data-testid="outside-note"' not in html

    def test_its_outside_count_is_each_account_once_under_several_agreements(
        self, cast: Cast
    ) -> None:
        from channels.models import CoverageAssignment
        from partners.selectors import accounts_outside_agreements
        from tests.factories import AccountFactory, RegionFactory

        today = timezone.localdate()
        east, west, north = (RegionFactory(code=code) for code in ("east", "west", "north"))
        retail, energy = VerticalFactory(code="retail"), VerticalFactory(code="energy")
        # East in retail only, and all of the west: north and east energy lie outside.
        for regions, verticals in (([east], [retail]), ([west], [])):
            AgreementFactory(
                partner=cast.partner_a,
                regions=regions,
                verticals=verticals,
                start_date=today - timedelta(days=10),
                end_date=today + timedelta(days=300),
            )
        segments = [(east, retail), (east, energy), (west, energy), (north, retail)] * 2
        accounts = [
            AccountFactory(name=f"Segment Co {n}", region=region, vertical=vertical)
            for n, (region, vertical) in enumerate(segments)
        ]
        for account in accounts:
            for start in (today - timedelta(days=40), today):  # two assignments each
                CoverageAssignment.objects.create(
                    account=account,
                    kind="partner",
                    partner=cast.partner_a,
                    start_date=start,
                    end_date=start + timedelta(days=20) if start < today else None,
                )
        page = signed_in(cast.partner_a_user).get("/portal/accounts/")
        expected = accounts_outside_agreements(
            partner=cast.partner_a,
            accounts=Account.objects.filter(pk__in=[a.pk for a in accounts]),
            day=today,
        )
        assert page.context["outside_total"] == expected.count() == 4
        assert page.context["outside_ids"] == set(expected.values_list("pk", flat=True))

    def test_it_counts_each_assigned_account_once_and_flags_all_without_an_agreement(
        self, cast: Cast
    ) -> None:
        from channels.models import CoverageAssignment
        from tests.factories import AccountFactory

        today = timezone.localdate()
        accounts = [AccountFactory(name=f"Portal Co {n}") for n in range(3)]
        for account in accounts:
            for start in (today - timedelta(days=40), today):
                CoverageAssignment.objects.create(
                    account=account,
                    kind="partner",
                    partner=cast.partner_a,
                    start_date=start,
                    end_date=start + timedelta(days=20) if start < today else None,
                )
        page = signed_in(cast.partner_a_user).get("/portal/accounts/")
        assert page.context["page"].paginator.count == 3
        assert page.context["outside_total"] == 3
        assert page.context["outside_ids"] == {account.pk for account in accounts}
