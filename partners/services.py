"""Writes with business rules for partners and their agreements.

Every function is keyword-only, validates with `full_clean()` and raises ValidationError
with a message a sales manager can act on; nothing is half saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import IO, Any

from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.files import MB, upload_validate
from crm.models import Region, Vertical
from partners.models import Agreement, AgreementStatus, Partner

SIGNED_DOCUMENT_MAX_BYTES = 10 * MB


@dataclass
class AgreementTerms:
    """What a draft says; the same fields the draft form edits."""

    agreement_type: str
    start_date: date
    end_date: date
    regions: list[Region] = field(default_factory=list)
    verticals: list[Vertical] = field(default_factory=list)
    exclusive: bool = False
    auto_renew: bool = False
    notice_days: int = 30
    discount_percent: Decimal | None = None
    revenue_share_percent: Decimal | None = None
    annual_target: Decimal | None = None
    currency: str = "USD"
    responsibilities: str = ""
    rights: str = ""

    @classmethod
    def of(cls, agreement: Agreement) -> AgreementTerms:
        return cls(
            agreement_type=agreement.agreement_type,
            start_date=agreement.start_date,
            end_date=agreement.end_date,
            regions=list(agreement.regions.all()),
            verticals=list(agreement.verticals.all()),
            exclusive=agreement.exclusive,
            auto_renew=agreement.auto_renew,
            notice_days=agreement.notice_days,
            discount_percent=agreement.discount_percent,
            revenue_share_percent=agreement.revenue_share_percent,
            annual_target=agreement.annual_target,
            currency=agreement.currency,
            responsibilities=agreement.responsibilities,
            rights=agreement.rights,
        )


_SCALAR_TERMS = (
    "agreement_type",
    "start_date",
    "end_date",
    "exclusive",
    "auto_renew",
    "notice_days",
    "discount_percent",
    "revenue_share_percent",
    "annual_target",
    "currency",
    "responsibilities",
    "rights",
)


def _effective_end(agreement: Agreement) -> date:
    if agreement.terminated_on and agreement.terminated_on < agreement.end_date:
        return agreement.terminated_on
    return agreement.end_date


def agreement_exclusivity_conflicts(
    *,
    partner: Partner,
    start_date: date,
    end_date: date,
    regions: list[Region],
    verticals: list[Vertical],
    exclusive: bool,
    exclude_pk: int | None = None,
) -> list[Agreement]:
    """Signed agreements of other partners whose term and scope overlap these terms, where
    either side is exclusive. Empty regions or verticals mean all, so they overlap everything."""
    others: QuerySet[Agreement] = (
        Agreement.objects.filter(status__in=[AgreementStatus.ACTIVE, AgreementStatus.TERMINATED])
        .exclude(partner=partner)
        .filter(start_date__lte=end_date)
        .filter(
            Q(terminated_on__isnull=True, end_date__gte=start_date)
            | Q(terminated_on__gte=start_date)
        )
        .prefetch_related("regions", "verticals")
        .select_related("partner")
    )
    if not exclusive:
        others = others.filter(exclusive=True)
    if exclude_pk:
        others = others.exclude(pk=exclude_pk)
    region_ids = {r.pk for r in regions}
    vertical_ids = {v.pk for v in verticals}
    conflicts = []
    for other in others:
        if _effective_end(other) < start_date:
            continue
        other_regions = {r.pk for r in other.regions.all()}
        other_verticals = {v.pk for v in other.verticals.all()}
        regions_meet = not region_ids or not other_regions or bool(region_ids & other_regions)
        verticals_meet = (
            not vertical_ids or not other_verticals or bool(vertical_ids & other_verticals)
        )
        if regions_meet and verticals_meet:
            conflicts.append(other)
    return conflicts


def _refuse_exclusivity_conflicts(
    *, partner: Partner, terms: AgreementTerms, exclude_pk: int | None
) -> None:
    conflicts = agreement_exclusivity_conflicts(
        partner=partner,
        start_date=terms.start_date,
        end_date=terms.end_date,
        regions=terms.regions,
        verticals=terms.verticals,
        exclusive=terms.exclusive,
        exclude_pk=exclude_pk,
    )
    if conflicts:
        other = conflicts[0]
        side = "This exclusive agreement" if terms.exclusive else "This agreement"
        raise ValidationError(
            f"{side} overlaps {other.external_id} with {other.partner.name} "
            f"({other.start_date:%Y-%m-%d} to {_effective_end(other):%Y-%m-%d}), "
            f"which is {'exclusive and ' if other.exclusive else ''}in force "
            "for the same region and vertical.",
            code="exclusivity",
        )


def _apply_terms(agreement: Agreement, terms: AgreementTerms) -> None:
    for name in _SCALAR_TERMS:
        setattr(agreement, name, getattr(terms, name))


def _save(agreement: Agreement, *, by: Any, terms: AgreementTerms | None = None) -> Agreement:
    agreement.full_clean()
    agreement._history_user = by  # simple_history records who made the change
    agreement.save()
    if terms is not None:
        agreement.regions.set(terms.regions)
        agreement.verticals.set(terms.verticals)
    return agreement


@transaction.atomic
def agreement_create_draft(*, partner: Partner, terms: AgreementTerms, by: Any) -> Agreement:
    """Create a draft agreement for `partner`. Raises ValidationError for bad terms or an
    exclusivity conflict with another partner's agreement."""
    if not partner.is_active:
        raise ValidationError(
            f"{partner.name} is deactivated; reactivate it before drafting agreements."
        )
    _refuse_exclusivity_conflicts(partner=partner, terms=terms, exclude_pk=None)
    agreement = Agreement(partner=partner, status=AgreementStatus.DRAFT)
    _apply_terms(agreement, terms)
    return _save(agreement, by=by, terms=terms)


@transaction.atomic
def agreement_update_draft(*, agreement: Agreement, terms: AgreementTerms, by: Any) -> Agreement:
    """Change a draft's terms. Raises ValidationError when it is no longer a draft."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.DRAFT:
        raise ValidationError(
            f"{agreement.external_id} is {agreement.get_status_display().lower()}; "
            "only drafts can be edited. Renew it to change the terms."
        )
    _refuse_exclusivity_conflicts(partner=agreement.partner, terms=terms, exclude_pk=agreement.pk)
    _apply_terms(agreement, terms)
    return _save(agreement, by=by, terms=terms)


def signed_document_validate(document: IO[bytes]) -> None:
    """The signed agreement must be a PDF (by content) of at most 10 MB."""
    upload_validate(
        document, formats={"pdf"}, max_bytes=SIGNED_DOCUMENT_MAX_BYTES, what="signed agreement"
    )


@transaction.atomic
def agreement_activate(
    *,
    agreement: Agreement,
    signed_on: date,
    signed_document: UploadedFile,
    by: Any,
    today: date | None = None,
) -> Agreement:
    """Sign a draft and make it active: the signed date plus the signed PDF.

    Raises ValidationError when it is not a draft, the date lies in the future, the file is not
    a PDF of at most 10 MB, or an exclusivity conflict exists.
    """
    today = today or timezone.localdate()
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.DRAFT:
        raise ValidationError(
            f"{agreement.external_id} is already {agreement.get_status_display().lower()}."
        )
    if signed_on > today:
        raise ValidationError({"signed_on": "The signed date cannot be in the future."})
    if agreement.end_date < today:
        raise ValidationError(
            {
                "signed_on": f"{agreement.external_id} ended on {agreement.end_date:%Y-%m-%d}; "
                "edit the dates before activating it."
            }
        )
    try:
        signed_document_validate(signed_document)
    except ValidationError as error:
        raise ValidationError({"signed_document": error.messages}) from None
    _refuse_exclusivity_conflicts(
        partner=agreement.partner, terms=AgreementTerms.of(agreement), exclude_pk=agreement.pk
    )
    agreement.signed_on = signed_on
    agreement.status = AgreementStatus.ACTIVE
    agreement.signed_document.save("signed.pdf", signed_document, save=False)
    try:
        return _save(agreement, by=by)
    except Exception:
        # The file was written before the row; remove it so nothing is half saved.
        agreement.signed_document.delete(save=False)
        raise


@transaction.atomic
def agreement_renew(*, agreement: Agreement, by: Any) -> Agreement:
    """Create the renewal: a new draft linked to `agreement`, with the same terms, starting the
    day after it ends and running as long. Raises ValidationError for drafts or when a renewal
    draft already exists."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status == AgreementStatus.DRAFT:
        raise ValidationError(
            f"{agreement.external_id} is still a draft; activate it before renewing."
        )
    pending = agreement.renewals.filter(status=AgreementStatus.DRAFT).first()
    if pending:
        raise ValidationError(
            f"{agreement.external_id} already has a renewal draft: {pending.external_id}."
        )
    terms = AgreementTerms.of(agreement)
    length = agreement.end_date - agreement.start_date
    terms.start_date = agreement.end_date + timedelta(days=1)
    terms.end_date = terms.start_date + length
    renewal = Agreement(partner=agreement.partner, status=AgreementStatus.DRAFT, renews=agreement)
    _apply_terms(renewal, terms)
    return _save(renewal, by=by, terms=terms)


@transaction.atomic
def agreement_terminate(
    *, agreement: Agreement, terminated_on: date, reason: str, by: Any
) -> Agreement:
    """End an active agreement early on `terminated_on` (it stays in force through that day).
    Raises ValidationError when it is not active, the date lies outside its term, or no reason
    is given."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.ACTIVE:
        raise ValidationError(
            f"Only active agreements can be terminated; {agreement.external_id} is "
            f"{agreement.get_status_display().lower()}."
        )
    errors: dict[str, str] = {}
    if not (agreement.start_date <= terminated_on <= agreement.end_date):
        errors["terminated_on"] = (
            f"The termination date must lie within the term, "
            f"{agreement.start_date:%Y-%m-%d} to {agreement.end_date:%Y-%m-%d}."
        )
    if not reason.strip():
        errors["reason"] = "Say why the agreement is terminated."
    if errors:
        raise ValidationError(errors)
    agreement.status = AgreementStatus.TERMINATED
    agreement.terminated_on = terminated_on
    agreement.termination_reason = reason.strip()
    return _save(agreement, by=by)


def agreements_expire(*, today: date) -> int:
    """Mark active agreements whose end date has passed as expired; return how many.

    Idempotent. One save per agreement so each change lands in the agreement's history.
    """
    expired = 0
    for agreement in Agreement.objects.filter(status=AgreementStatus.ACTIVE, end_date__lt=today):
        with transaction.atomic():
            agreement.status = AgreementStatus.EXPIRED
            _save(agreement, by=None)
            expired += 1
    return expired
