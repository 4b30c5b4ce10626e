from __future__ import annotations

from datetime import date, timedelta

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from django.utils.formats import date_format

from partners.models import Agreement, AgreementStatus
from tests.cast import Cast, signed_in
from tests.factories import AgreementFactory, RegionFactory

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n%%EOF\n"


def _draft_form(partner_pk: int, **overrides: str) -> dict[str, object]:
    data: dict[str, object] = {
        "partner": str(partner_pk),
        "agreement_type": "reseller",
        "start_date": "2026-01-01",
        "end_date": "2027-12-31",
        "notice_days": "60",
        "currency": "EUR",
        "discount_percent": "15",
        "responsibilities": "Run pilots",
    }
    data.update(overrides)
    return data


class TestAgreementPages:
    def test_it_creates_a_draft_from_the_form(self, cast: Cast) -> None:
        region = RegionFactory()
        response = signed_in(cast.manager).post(
            "/workspace/agreements/new/", _draft_form(cast.partner_a.pk, regions=str(region.pk))
        )
        agreement = Agreement.objects.get()
        assert response.status_code == 302
        assert response["Location"] == f"/workspace/agreements/{agreement.pk}/"
        assert agreement.status == AgreementStatus.DRAFT and agreement.currency == "EUR"
        assert list(agreement.regions.all()) == [region]
        assert agreement.history.first().history_user == cast.manager

    def test_it_shows_bad_input_next_to_the_field_and_keeps_what_was_typed(
        self, cast: Cast
    ) -> None:
        response = signed_in(cast.manager).post(
            "/workspace/agreements/new/",
            _draft_form(
                cast.partner_a.pk,
                end_date="2025-01-01",
                currency="euro",
                responsibilities="Kept text",
            ),
        )
        html = response.content.decode()
        assert response.status_code == 200
        assert 'data-field-error="end_date"' in html and "cannot be before the start date" in html
        assert 'data-field-error="currency"' in html
        assert "Kept text" in html
        assert not Agreement.objects.exists()

    def test_it_does_not_let_reps_or_executives_write(self, cast: Cast) -> None:
        for user in (cast.rep_user, cast.executive):
            response = signed_in(user).post(
                "/workspace/agreements/new/", _draft_form(cast.partner_a.pk)
            )
            assert response.status_code == 404
        assert not Agreement.objects.exists()

    def test_it_activates_with_an_uploaded_pdf_and_serves_it_as_an_attachment(
        self, cast: Cast
    ) -> None:
        draft = AgreementFactory(
            partner=cast.partner_a,
            status=AgreementStatus.DRAFT,
            signed_on=None,
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        client = signed_in(cast.manager)
        upload = SimpleUploadedFile("signed.pdf", PDF, content_type="application/pdf")
        response = client.post(
            f"/workspace/agreements/{draft.pk}/activate/",
            {"signed_on": timezone.localdate().isoformat(), "signed_document": upload},
        )
        assert response.status_code == 302
        draft.refresh_from_db()
        assert draft.status == AgreementStatus.ACTIVE

        download = client.get(f"/workspace/agreements/{draft.pk}/document/")
        assert download.status_code == 200
        assert download["Content-Disposition"].startswith("attachment")
        assert b"".join(download.streaming_content) == PDF

    def test_it_refuses_a_fake_pdf_next_to_the_file_field(self, cast: Cast) -> None:
        draft = AgreementFactory(
            partner=cast.partner_a,
            status=AgreementStatus.DRAFT,
            signed_on=None,
            start_date=date(2026, 1, 1),
            end_date=date(2027, 12, 31),
        )
        upload = SimpleUploadedFile(
            "signed.pdf", b"<html>not a pdf</html>", content_type="application/pdf"
        )
        response = signed_in(cast.manager).post(
            f"/workspace/agreements/{draft.pk}/activate/",
            {"signed_on": "2026-01-02", "signed_document": upload},
        )
        assert 'data-field-error="signed_document"' in response.content.decode()
        draft.refresh_from_db()
        assert draft.status == AgreementStatus.DRAFT

    def test_it_hides_the_signed_document_from_partner_users(self, cast: Cast) -> None:
        agreement = AgreementFactory(partner=cast.partner_a)
        agreement.signed_document.save("x.pdf", SimpleUploadedFile("x.pdf", PDF))
        assert (
            signed_in(cast.partner_b_user)
            .get(f"/workspace/agreements/{agreement.pk}/document/")
            .status_code
            == 404
        )

    def test_it_asks_before_renewing_then_opens_the_prefilled_draft(self, cast: Cast) -> None:
        agreement = AgreementFactory(
            partner=cast.partner_a, start_date=date(2025, 1, 1), end_date=date(2025, 12, 31)
        )
        client = signed_in(cast.manager)
        detail = client.get(f"/workspace/agreements/{agreement.pk}/").content.decode()
        assert f'href="/workspace/agreements/{agreement.pk}/renew/"' in detail
        confirm = client.get(f"/workspace/agreements/{agreement.pk}/renew/").content.decode()
        assert not Agreement.objects.filter(renews=agreement).exists()
        assert date_format(date(2026, 1, 1)) in confirm
        assert date_format(date(2026, 12, 31)) in confirm
        response = client.post(f"/workspace/agreements/{agreement.pk}/renew/")
        renewal = Agreement.objects.get(renews=agreement)
        assert response["Location"] == f"/workspace/agreements/{renewal.pk}/edit/"
        edit = client.get(response["Location"]).content.decode()
        assert 'value="2026-01-01"' in edit

    def test_it_shows_the_existing_renewal_instead_of_creating_another(self, cast: Cast) -> None:
        agreement = AgreementFactory(partner=cast.partner_a)
        client = signed_in(cast.manager)
        client.post(f"/workspace/agreements/{agreement.pk}/renew/")
        renewal = Agreement.objects.get(renews=agreement)
        detail = client.get(f"/workspace/agreements/{agreement.pk}/").content.decode()
        assert f'href="/workspace/agreements/{agreement.pk}/renew/"' not in detail
        assert f"Open renewal {renewal.external_id}" in detail
        confirm = client.get(f"/workspace/agreements/{agreement.pk}/renew/").content.decode()
        assert "already renewed by" in confirm and renewal.external_id in confirm
        assert "Create the renewal draft" not in confirm
        again = client.post(f"/workspace/agreements/{agreement.pk}/renew/")
        assert again.status_code == 409
        assert Agreement.objects.filter(renews=agreement).count() == 1

    def test_it_discards_a_draft_after_asking_and_lists_it_on_the_renewed_agreement(
        self, cast: Cast
    ) -> None:
        agreement = AgreementFactory(partner=cast.partner_a)
        client = signed_in(cast.manager)
        client.post(f"/workspace/agreements/{agreement.pk}/renew/")
        renewal = Agreement.objects.get(renews=agreement)
        page = client.get(f"/workspace/agreements/{renewal.pk}/").content.decode()
        assert f'href="/workspace/agreements/{renewal.pk}/discard/"' in page
        assert (
            "Discard the draft"
            in client.get(f"/workspace/agreements/{renewal.pk}/discard/").content.decode()
        )
        assert Agreement.objects.filter(pk=renewal.pk).exists()
        response = client.post(f"/workspace/agreements/{renewal.pk}/discard/")
        assert response["Location"] == f"/workspace/agreements/{agreement.pk}/"
        assert not Agreement.objects.filter(pk=renewal.pk).exists()
        detail = client.get(response["Location"]).content.decode()
        assert renewal.external_id in detail and "Discarded renewal drafts" in detail
        assert f'href="/workspace/agreements/{agreement.pk}/renew/"' in detail

    def test_it_discards_nothing_but_drafts(self, cast: Cast) -> None:
        agreement = AgreementFactory(partner=cast.partner_a)
        client = signed_in(cast.manager)
        assert client.get(f"/workspace/agreements/{agreement.pk}/discard/").status_code == 404
        client.post(f"/workspace/agreements/{agreement.pk}/discard/")
        assert Agreement.objects.filter(pk=agreement.pk).exists()

    def test_it_terminates_with_a_date_and_reason(self, cast: Cast) -> None:
        agreement = AgreementFactory(
            partner=cast.partner_a, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)
        )
        client = signed_in(cast.manager)
        bad = client.post(
            f"/workspace/agreements/{agreement.pk}/terminate/",
            {"terminated_on": "2027-03-01", "reason": "x"},
        )
        assert 'data-field-error="terminated_on"' in bad.content.decode()
        client.post(
            f"/workspace/agreements/{agreement.pk}/terminate/",
            {"terminated_on": "2026-06-30", "reason": "Partner left"},
        )
        agreement.refresh_from_db()
        assert (
            agreement.status == AgreementStatus.TERMINATED
            and agreement.termination_reason == "Partner left"
        )

    def test_it_lists_renewals_due_with_notice_deadlines(self, cast: Cast) -> None:
        today = timezone.localdate()
        soon = AgreementFactory(
            external_id="AG-SOON",
            start_date=today - timedelta(days=300),
            end_date=today + timedelta(days=20),
            notice_days=30,
        )
        AgreementFactory(
            external_id="AG-LATER",
            start_date=today - timedelta(days=300),
            end_date=today + timedelta(days=75),
        )
        html30 = (
            signed_in(cast.manager)
            .get("/workspace/agreements/renewals-due/?within=30")
            .content.decode()
        )
        assert "AG-SOON" in html30 and "AG-LATER" not in html30
        assert date_format(soon.end_date - timedelta(days=30)) in html30 and "passed" in html30
        html90 = (
            signed_in(cast.manager)
            .get("/workspace/agreements/renewals-due/?within=90")
            .content.decode()
        )
        assert "AG-LATER" in html90

    def test_its_multiple_choice_lists_say_how_to_choose_several(self, cast: Cast) -> None:
        html = signed_in(cast.manager).get("/workspace/agreements/new/").content.decode()
        for name in ("regions", "verticals"):
            field = html[html.index(f'name="{name}"') :]
            hint = field[field.index('class="form-text"') :][:200]
            assert "Hold Ctrl (⌘ on a Mac) and click to choose several" in hint, name
