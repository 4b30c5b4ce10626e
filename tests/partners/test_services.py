from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from crm.files import MB
from partners.models import Agreement, AgreementStatus
from partners.services import (
    AgreementTerms,
    agreement_activate,
    agreement_create_draft,
    agreement_discard_draft,
    agreement_renew,
    agreement_terminate,
    agreement_update_draft,
    agreements_expire,
)
from tests.cast import Cast
from tests.factories import AgreementFactory, PartnerFactory, RegionFactory, VerticalFactory

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
TODAY = date(2026, 11, 22)


def _pdf(content: bytes = PDF, name: str = "contract.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/pdf")


def _terms(**overrides: object) -> AgreementTerms:
    values: dict[str, object] = {
        "agreement_type": "reseller",
        "start_date": date(2026, 1, 1),
        "end_date": date(2027, 12, 31),
    }
    values.update(overrides)
    return AgreementTerms(**values)  # type: ignore[arg-type]


@pytest.mark.django_db
class TestAgreementLifecycle:
    def test_it_creates_a_draft_and_records_who_did_it(self, cast: Cast) -> None:
        agreement = agreement_create_draft(partner=cast.partner_a, terms=_terms(), by=cast.manager)
        assert agreement.status == AgreementStatus.DRAFT
        assert agreement.history.first().history_user == cast.manager

    def test_it_refuses_a_draft_ending_before_it_starts(self, cast: Cast) -> None:
        with pytest.raises(ValidationError):
            agreement_create_draft(
                partner=cast.partner_a, terms=_terms(end_date=date(2025, 1, 1)), by=cast.manager
            )
        assert not Agreement.objects.exists()

    def test_it_activates_a_draft_with_a_signed_pdf_under_a_generated_name(
        self, cast: Cast
    ) -> None:
        draft = agreement_create_draft(partner=cast.partner_a, terms=_terms(), by=cast.manager)
        active = agreement_activate(
            agreement=draft,
            signed_on=date(2026, 1, 5),
            signed_document=_pdf(name="../../etc/passwd.pdf"),
            by=cast.manager,
            today=TODAY,
        )
        assert active.status == AgreementStatus.ACTIVE
        assert active.signed_on == date(2026, 1, 5)
        assert "passwd" not in active.signed_document.name
        assert active.signed_document.name.startswith("agreements/")
        with active.signed_document.open("rb") as stored:
            assert stored.read() == PDF

    def test_it_refuses_a_signed_document_that_is_not_a_pdf_by_content(self, cast: Cast) -> None:
        draft = agreement_create_draft(partner=cast.partner_a, terms=_terms(), by=cast.manager)
        with pytest.raises(ValidationError) as error:
            agreement_activate(
                agreement=draft,
                signed_on=date(2026, 1, 5),
                signed_document=_pdf(b"MZ\x90\x00 not a pdf", "contract.pdf"),
                by=cast.manager,
                today=TODAY,
            )
        assert "PDF" in str(error.value)
        draft.refresh_from_db()
        assert draft.status == AgreementStatus.DRAFT and not draft.signed_document

    def test_it_refuses_a_signed_document_over_ten_megabytes(self, cast: Cast) -> None:
        draft = agreement_create_draft(partner=cast.partner_a, terms=_terms(), by=cast.manager)
        with pytest.raises(ValidationError) as error:
            agreement_activate(
                agreement=draft,
                signed_on=date(2026, 1, 5),
                signed_document=_pdf(PDF + b"0" * (10 * MB)),
                by=cast.manager,
                today=TODAY,
            )
        assert "10 MB" in str(error.value)

    def test_it_refuses_a_signed_date_in_the_future(self, cast: Cast) -> None:
        draft = agreement_create_draft(partner=cast.partner_a, terms=_terms(), by=cast.manager)
        with pytest.raises(ValidationError):
            agreement_activate(
                agreement=draft,
                signed_on=date(2026, 12, 1),
                signed_document=_pdf(),
                by=cast.manager,
                today=TODAY,
            )

    def test_it_only_edits_drafts(self, cast: Cast) -> None:
        active = AgreementFactory(partner=cast.partner_a)
        with pytest.raises(ValidationError, match="only drafts"):
            agreement_update_draft(agreement=active, terms=_terms(), by=cast.manager)

    def test_it_renews_into_a_linked_prefilled_draft(self, cast: Cast) -> None:
        region = RegionFactory()
        old = AgreementFactory(
            partner=cast.partner_a,
            start_date=date(2025, 1, 1),
            end_date=date(2025, 12, 31),
            regions=[region],
            notice_days=60,
        )
        renewal = agreement_renew(agreement=old, by=cast.manager)
        assert renewal.status == AgreementStatus.DRAFT
        assert renewal.renews == old
        assert renewal.start_date == date(2026, 1, 1) and renewal.end_date == date(2026, 12, 31)
        assert list(renewal.regions.all()) == [region] and renewal.notice_days == 60
        with pytest.raises(ValidationError, match=renewal.external_id):
            agreement_renew(agreement=old, by=cast.manager)

    @pytest.mark.parametrize(
        ("start", "end", "renewed_start", "renewed_end"),
        [
            # A year across 29 February 2028 keeps its day and month (was 2028-12-04).
            (date(2026, 12, 6), date(2027, 12, 5), date(2027, 12, 6), date(2028, 12, 5)),
            (date(2027, 3, 1), date(2028, 2, 29), date(2028, 3, 1), date(2029, 2, 28)),
            (date(2025, 1, 1), date(2025, 12, 31), date(2026, 1, 1), date(2026, 12, 31)),
            (date(2026, 1, 15), date(2026, 4, 14), date(2026, 4, 15), date(2026, 7, 14)),
            (date(2026, 1, 1), date(2026, 1, 10), date(2026, 1, 11), date(2026, 1, 20)),
        ],
    )
    def test_it_renews_for_the_same_length_by_the_calendar(
        self, cast: Cast, start: date, end: date, renewed_start: date, renewed_end: date
    ) -> None:
        old = AgreementFactory(partner=cast.partner_a, start_date=start, end_date=end)
        renewal = agreement_renew(agreement=old, by=cast.manager)
        assert (renewal.start_date, renewal.end_date) == (renewed_start, renewed_end)

    def test_it_keeps_one_renewal_even_once_the_renewal_is_signed(self, cast: Cast) -> None:
        old = AgreementFactory(
            partner=cast.partner_a, start_date=date(2025, 1, 1), end_date=date(2025, 12, 31)
        )
        renewal = agreement_renew(agreement=old, by=cast.manager)
        Agreement.objects.filter(pk=renewal.pk).update(
            status=AgreementStatus.ACTIVE, signed_on=date(2025, 12, 1)
        )
        with pytest.raises(ValidationError, match=f"already renewed by {renewal.external_id}"):
            agreement_renew(agreement=old, by=cast.manager)
        assert old.renewals.count() == 1

    def test_it_discards_a_draft_keeping_its_history_and_then_renews_again(
        self, cast: Cast
    ) -> None:
        old = AgreementFactory(partner=cast.partner_a)
        renewal = agreement_renew(agreement=old, by=cast.manager)
        agreement_discard_draft(agreement=renewal, by=cast.manager)
        assert not Agreement.objects.filter(pk=renewal.pk).exists()
        history = list(Agreement.history.filter(id=renewal.pk).order_by("history_date"))
        assert [h.history_type for h in history] == ["+", "-"]
        assert history[-1].history_user == cast.manager and history[-1].renews_id == old.pk
        again = agreement_renew(agreement=old, by=cast.manager)
        assert again.renews == old

    def test_it_discards_only_drafts(self, cast: Cast) -> None:
        active = AgreementFactory(partner=cast.partner_a)
        with pytest.raises(ValidationError, match="only drafts can be discarded"):
            agreement_discard_draft(agreement=active, by=cast.manager)
        assert Agreement.objects.filter(pk=active.pk).exists()

    def test_it_terminates_within_the_term_with_a_reason(self, cast: Cast) -> None:
        active = AgreementFactory(
            partner=cast.partner_a, start_date=date(2026, 1, 1), end_date=date(2026, 12, 31)
        )
        with pytest.raises(ValidationError) as error:
            agreement_terminate(
                agreement=active, terminated_on=date(2027, 2, 1), reason="", by=cast.manager
            )
        assert set(error.value.message_dict) == {"terminated_on", "reason"}
        done = agreement_terminate(
            agreement=active,
            terminated_on=date(2026, 6, 30),
            reason="Left the market",
            by=cast.manager,
        )
        assert done.status == AgreementStatus.TERMINATED and done.in_force_on(date(2026, 6, 30))
        assert not done.in_force_on(date(2026, 7, 1))

    def test_it_expires_active_agreements_past_their_end_date(self, cast: Cast) -> None:
        ended = AgreementFactory(start_date=date(2025, 1, 1), end_date=date(2026, 11, 21))
        ends_today = AgreementFactory(start_date=date(2025, 1, 1), end_date=date(2026, 11, 22))
        assert agreements_expire(today=TODAY) == 1
        assert agreements_expire(today=TODAY) == 0
        ended.refresh_from_db()
        ends_today.refresh_from_db()
        assert (
            ended.status == AgreementStatus.EXPIRED and ends_today.status == AgreementStatus.ACTIVE
        )
        assert ended.history.first().status == AgreementStatus.EXPIRED


@pytest.mark.django_db
class TestExclusivity:
    def test_it_refuses_an_exclusive_draft_overlapping_another_partners_agreement(
        self, cast: Cast
    ) -> None:
        region, vertical = RegionFactory(), VerticalFactory()
        other = AgreementFactory(
            partner=cast.partner_b,
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            regions=[region],
        )
        with pytest.raises(ValidationError) as error:
            agreement_create_draft(
                partner=cast.partner_a,
                by=cast.manager,
                terms=_terms(
                    exclusive=True,
                    regions=[region],
                    verticals=[vertical],
                    start_date=date(2026, 6, 1),
                    end_date=date(2027, 5, 31),
                ),
            )
        assert other.external_id in str(error.value) and cast.partner_b.name in str(error.value)

    def test_it_refuses_any_agreement_overlapping_an_exclusive_one(self, cast: Cast) -> None:
        vertical = VerticalFactory()
        AgreementFactory(
            partner=cast.partner_b,
            exclusive=True,
            verticals=[vertical],
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        with pytest.raises(ValidationError, match="exclusive"):
            agreement_create_draft(
                partner=cast.partner_a, by=cast.manager, terms=_terms(verticals=[vertical])
            )

    def test_it_allows_an_exclusive_agreement_in_another_region_or_after_termination(
        self, cast: Cast
    ) -> None:
        north, south = RegionFactory(), RegionFactory()
        AgreementFactory(
            partner=cast.partner_b,
            exclusive=True,
            regions=[north],
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        agreement_create_draft(
            partner=cast.partner_a, by=cast.manager, terms=_terms(exclusive=True, regions=[south])
        )
        AgreementFactory(
            partner=PartnerFactory(),
            exclusive=True,
            regions=[south],
            start_date=date(2024, 1, 1),
            end_date=date(2026, 12, 31),
            status=AgreementStatus.TERMINATED,
            terminated_on=date(2024, 6, 30),
        )
        agreement_create_draft(
            partner=cast.partner_a,
            by=cast.manager,
            terms=_terms(
                exclusive=True,
                regions=[south],
                start_date=date(2025, 1, 1),
                end_date=date(2025, 6, 30),
            ),
        )

    def test_it_does_not_count_a_partners_own_agreements_as_conflicts(self, cast: Cast) -> None:
        AgreementFactory(
            partner=cast.partner_a,
            exclusive=True,
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        )
        agreement_create_draft(
            partner=cast.partner_a, by=cast.manager, terms=_terms(exclusive=True)
        )
