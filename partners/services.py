"""Writes with business rules for partners and their agreements.

Every function is keyword-only, validates with `full_clean()` and raises ValidationError
with a message a sales manager can act on; nothing is half saved.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import IO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.formats import date_format, number_format
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from crm.files import MB, upload_validate
from crm.limits import RateLimited
from crm.models import LATEST_DATE, Region, Vertical, validate_business_date
from crm.roles import is_internal
from crm.services import email_queue
from partners.coverage_kinds import coverage_kinds_refresh_partner
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    FeedbackSource,
    FeedbackStatus,
    Partner,
    PartnerContact,
    PartnerUser,
)
from partners.programme_models import Tier
from partners.programme_services import partner_tier_set
from partners.webhooks import webhook_agreement_status

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
        if other.effective_end < start_date:
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


def _lock_territory(regions: list[Region]) -> None:
    """Lock the regions these terms grant (every region when none are named), in id order.

    Two agreements can only conflict when their regions meet, so two activations that could
    conflict always share a locked region: the second waits for the first to commit and then
    sees it. FOR NO KEY UPDATE, so accounts referring to a region are never held up. SQLite
    ignores row locks and serialises writers instead.
    """
    territory = Region.objects.order_by("pk").select_for_update(no_key=True)
    if regions:
        territory = territory.filter(pk__in=[region.pk for region in regions])
    list(territory.values_list("pk", flat=True))


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
        values = {
            "other": other.external_id,
            "partner": other.partner.name,
            "start": date_format(other.start_date),
            "end": date_format(other.effective_end),
        }
        if terms.exclusive:
            text = _(
                "This exclusive agreement overlaps %(other)s with %(partner)s (%(start)s to "
                "%(end)s), which is in force for the same region and vertical."
            )
        elif other.exclusive:
            text = _(
                "This agreement overlaps %(other)s with %(partner)s (%(start)s to %(end)s), "
                "which is exclusive and in force for the same region and vertical."
            )
        else:
            text = _(
                "This agreement overlaps %(other)s with %(partner)s (%(start)s to %(end)s), "
                "which is in force for the same region and vertical."
            )
        raise ValidationError(text % values, code="exclusivity")


def _refuse_bad_term(terms: AgreementTerms) -> None:
    """The term's own dates first: a conflict with another agreement is only worth reporting
    for a term that could stand."""
    errors: dict[str, list[str]] = {}
    for name in ("start_date", "end_date"):
        try:
            validate_business_date(getattr(terms, name))
        except ValidationError as error:
            errors[name] = error.messages
    if not errors and terms.end_date < terms.start_date:
        errors["end_date"] = ["The end date cannot be before the start date."]
    if errors:
        raise ValidationError(errors)


def _apply_terms(agreement: Agreement, terms: AgreementTerms) -> None:
    for name in _SCALAR_TERMS:
        setattr(agreement, name, getattr(terms, name))


def _save(
    agreement: Agreement, *, by: User | None, terms: AgreementTerms | None = None
) -> Agreement:
    if agreement.start_date and agreement.end_date and agreement.end_date < agreement.start_date:
        raise ValidationError({"end_date": "The end date cannot be before the start date."})
    agreement.full_clean()
    agreement._history_user = by  # type: ignore[attr-defined]  # simple_history records who made the change
    agreement.save()
    if terms is not None:
        agreement.regions.set(terms.regions)
        agreement.verticals.set(terms.verticals)
    if agreement.status != AgreementStatus.DRAFT:
        # What the agreement grants, and when, decides whose coverage counts (rule 3).
        coverage_kinds_refresh_partner(partner=agreement.partner)
    return agreement


@transaction.atomic
def agreement_create_draft(*, partner: Partner, terms: AgreementTerms, by: User) -> Agreement:
    """Create a draft agreement for `partner`. Raises ValidationError for bad terms or an
    exclusivity conflict with another partner's agreement."""
    if not partner.is_active:
        raise ValidationError(
            _("%(partner)s is deactivated; reactivate it before drafting agreements.")
            % {"partner": partner.name}
        )
    _refuse_bad_term(terms)
    _refuse_exclusivity_conflicts(partner=partner, terms=terms, exclude_pk=None)
    agreement = Agreement(partner=partner, status=AgreementStatus.DRAFT)
    _apply_terms(agreement, terms)
    _save(agreement, by=by, terms=terms)
    webhook_agreement_status(agreement=agreement, previous="")
    return agreement


@transaction.atomic
def agreement_update_draft(*, agreement: Agreement, terms: AgreementTerms, by: User) -> Agreement:
    """Change a draft's terms. Raises ValidationError when it is no longer a draft."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.DRAFT:
        raise ValidationError(
            _(
                "%(agreement)s is %(status)s; only drafts can be edited. "
                "Renew it to change the terms."
            )
            % {
                "agreement": agreement.external_id,
                "status": agreement.get_status_display().lower(),
            }
        )
    _refuse_bad_term(terms)
    _refuse_exclusivity_conflicts(partner=agreement.partner, terms=terms, exclude_pk=agreement.pk)
    _apply_terms(agreement, terms)
    return _save(agreement, by=by, terms=terms)


def signed_document_validate(document: IO[bytes]) -> None:
    """The signed agreement must be a PDF (by content) of at most 10 MB."""
    upload_validate(
        document,
        formats={"pdf"},
        max_bytes=SIGNED_DOCUMENT_MAX_BYTES,
        what=_("signed agreement"),
    )


@transaction.atomic
def agreement_activate(
    *,
    agreement: Agreement,
    signed_on: date,
    signed_document: UploadedFile,
    by: User,
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
            _("%(agreement)s is already %(status)s.")
            % {
                "agreement": agreement.external_id,
                "status": agreement.get_status_display().lower(),
            }
        )
    if signed_on > today:
        raise ValidationError({"signed_on": _("The signed date cannot be in the future.")})
    if agreement.end_date < today:
        raise ValidationError(
            {
                "signed_on": _(
                    "%(agreement)s ended on %(day)s; edit the dates before activating it."
                )
                % {"agreement": agreement.external_id, "day": date_format(agreement.end_date)}
            }
        )
    try:
        signed_document_validate(signed_document)
    except ValidationError as error:
        raise ValidationError({"signed_document": error.messages}) from None
    terms = AgreementTerms.of(agreement)
    _lock_territory(terms.regions)
    _refuse_exclusivity_conflicts(partner=agreement.partner, terms=terms, exclude_pk=agreement.pk)
    agreement.signed_on = signed_on
    agreement.status = AgreementStatus.ACTIVE
    agreement.signed_document.save("signed.pdf", signed_document, save=False)
    try:
        _save(agreement, by=by)
        webhook_agreement_status(agreement=agreement, previous=AgreementStatus.DRAFT)
        return agreement
    except Exception:
        # The file was written before the row; remove it so nothing is half saved.
        agreement.signed_document.delete(save=False)
        raise


def _add_months(day: date, months: int) -> date:
    """`day` moved by `months` calendar months, on the same day of the month or the month's
    last day when it has fewer days (31 January + 1 month = 28 or 29 February)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, monthrange(year, month + 1)[1]))


def renewal_term(*, start_date: date, end_date: date) -> tuple[date, date]:
    """The term of a renewal of an agreement running from `start_date` to `end_date`: it starts
    the day after the end and runs as long by the calendar, in whole months plus any odd days.
    A year from 6 December 2026 to 5 December 2027 renews from 6 December 2027 to 5 December
    2028 (the same day and month, a day before), whether or not a 29 February falls in it."""
    next_start = end_date + timedelta(days=1)
    months = (next_start.year - start_date.year) * 12 + next_start.month - start_date.month
    if _add_months(start_date, months) > next_start:
        months -= 1
    days = (next_start - _add_months(start_date, months)).days
    return next_start, _add_months(next_start, months) + timedelta(days=days - 1)


def agreement_renewal_of(agreement: Agreement) -> Agreement | None:
    """The agreement's renewal, if one exists (a discarded draft no longer does)."""
    return agreement.renewals.order_by("start_date", "pk").first()


def _already_renewed(agreement: Agreement) -> ValidationError | None:
    existing = agreement_renewal_of(agreement)
    if existing is None:
        return None
    values = {
        "agreement": agreement.external_id,
        "renewal": existing.external_id,
        "status": existing.get_status_display().lower(),
    }
    if existing.status == AgreementStatus.DRAFT:
        text = _(
            "%(agreement)s is already renewed by %(renewal)s (%(status)s); open it instead, "
            "or discard that draft before drafting another."
        )
    else:
        text = _("%(agreement)s is already renewed by %(renewal)s (%(status)s).")
    return ValidationError(text % values, code="renewed")


@transaction.atomic
def agreement_renew(*, agreement: Agreement, by: User) -> Agreement:
    """Create the renewal: a new draft linked to `agreement`, with the same terms, starting the
    day after it ends and running as long by the calendar (`renewal_term`). An agreement is
    renewed at most once (a database rule; discard a renewal draft to draft another), and its
    renewal is renewed onwards. Raises ValidationError for a draft, an agreement already
    renewed, or a renewal that would end after LATEST_DATE."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status == AgreementStatus.DRAFT:
        raise ValidationError(
            _("%(agreement)s is still a draft; activate it before renewing.")
            % {"agreement": agreement.external_id}
        )
    if refusal := _already_renewed(agreement):
        raise refusal
    try:
        start, end = renewal_term(start_date=agreement.start_date, end_date=agreement.end_date)
    except (OverflowError, ValueError):
        start = end = date.max
    if end > LATEST_DATE:
        raise ValidationError(
            _(
                "%(agreement)s runs to %(end)s; a renewal of the same length would end after "
                "%(latest)s. Correct its dates first."
            )
            % {
                "agreement": agreement.external_id,
                "end": date_format(agreement.end_date),
                "latest": date_format(LATEST_DATE),
            }
        )
    terms = AgreementTerms.of(agreement)
    terms.start_date, terms.end_date = start, end
    renewal = Agreement(partner=agreement.partner, status=AgreementStatus.DRAFT, renews=agreement)
    _apply_terms(renewal, terms)
    try:
        with transaction.atomic():
            _save(renewal, by=by, terms=terms)
    except IntegrityError:
        # agreement_renewed_once: a renewal made by a path that did not lock the agreement.
        raise _already_renewed(agreement) or ValidationError("Renewal refused.") from None
    webhook_agreement_status(agreement=renewal, previous="")
    return renewal


@transaction.atomic
def agreement_discard_draft(*, agreement: Agreement, by: User) -> None:
    """Delete a draft that will not be signed (a withdrawn renewal, a mistaken draft). Its
    history keeps every version and the deletion, with who discarded it. Raises
    ValidationError unless it is a draft: a signed agreement is terminated, never deleted."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.DRAFT:
        raise ValidationError(
            _("%(agreement)s is %(status)s; only drafts can be discarded.")
            % {
                "agreement": agreement.external_id,
                "status": agreement.get_status_display().lower(),
            }
        )
    agreement._history_user = by  # type: ignore[attr-defined]  # simple_history records who deleted it
    agreement.delete()


@transaction.atomic
def agreement_terminate(
    *, agreement: Agreement, terminated_on: date, reason: str, by: User
) -> Agreement:
    """End an active agreement early on `terminated_on` (it stays in force through that day).
    Raises ValidationError when it is not active, the date lies outside its term, or no reason
    is given."""
    agreement = Agreement.objects.select_for_update().get(pk=agreement.pk)
    if agreement.status != AgreementStatus.ACTIVE:
        raise ValidationError(
            _("Only active agreements can be terminated; %(agreement)s is %(status)s.")
            % {
                "agreement": agreement.external_id,
                "status": agreement.get_status_display().lower(),
            }
        )
    errors: dict[str, str] = {}
    if not (agreement.start_date <= terminated_on <= agreement.end_date):
        errors["terminated_on"] = _(
            "The termination date must lie within the term, %(start)s to %(end)s."
        ) % {"start": date_format(agreement.start_date), "end": date_format(agreement.end_date)}
    if not reason.strip():
        errors["reason"] = _("Say why the agreement is terminated.")
    if errors:
        raise ValidationError(errors)
    agreement.status = AgreementStatus.TERMINATED
    agreement.terminated_on = terminated_on
    agreement.termination_reason = reason.strip()
    _save(agreement, by=by)
    webhook_agreement_status(agreement=agreement, previous=AgreementStatus.ACTIVE)
    return agreement


def agreements_expire(*, today: date) -> int:
    """Mark active agreements whose end date has passed as expired; return how many.

    Idempotent. One save per agreement so each change lands in the agreement's history.
    """
    expired = 0
    for agreement in Agreement.objects.filter(status=AgreementStatus.ACTIVE, end_date__lt=today):
        with transaction.atomic():
            agreement.status = AgreementStatus.EXPIRED
            _save(agreement, by=None)
            webhook_agreement_status(agreement=agreement, previous=AgreementStatus.ACTIVE)
            expired += 1
    return expired


FEEDBACK_BODY_MAX = 5000


@dataclass
class FeedbackEntry:
    """What a partner tells us: the fields of the submission form."""

    category: str
    satisfaction: int
    subject: str
    body: str
    nps: int | None = None


def _too_long(what: str) -> str:
    return _("Keep the %(what)s to %(count)s characters.") % {
        "what": what,
        "count": number_format(FEEDBACK_BODY_MAX, force_grouping=True),
    }


def _feedback_save(feedback: Feedback) -> Feedback:
    if len(feedback.body) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": _too_long(_("message"))})
    feedback.full_clean(exclude=["attachment"])
    feedback.save()
    return feedback


@transaction.atomic
def feedback_log_for_partner(*, partner: Partner, entry: FeedbackEntry, by: User) -> Feedback:
    """Record feedback a manager heard from `partner` (in a meeting, on a call).
    Raises ValidationError for out-of-range ratings or an over-long message."""
    feedback = Feedback(
        partner=partner,
        logged_by=by,
        category=entry.category,
        satisfaction=entry.satisfaction,
        nps=entry.nps,
        subject=entry.subject.strip(),
        body=entry.body.strip(),
        status=FeedbackStatus.ACKNOWLEDGED,
        source=FeedbackSource.MANAGER,
    )
    return _feedback_save(feedback)


def _partner_addresses(feedback: Feedback) -> list[str]:
    addresses = {
        membership.user.email
        for membership in feedback.partner.portal_users.select_related("user")
        if membership.user.is_active and membership.user.email
    }
    return sorted(addresses)


@transaction.atomic
def feedback_reply(*, feedback: Feedback, author: User, body: str) -> FeedbackReply:
    """Add a reply the partner sees, and e-mail the partner's portal users after commit
    (through the outbox, so a broken mail server or broker loses nothing)."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": _("Write a reply first.")})
    reply = FeedbackReply(feedback=feedback, author=author, body=text)
    if len(text) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": _too_long(_("reply"))})
    reply.full_clean()
    reply.save()
    if feedback.status == FeedbackStatus.NEW:
        feedback.status = FeedbackStatus.ACKNOWLEDGED
        feedback.save(update_fields=["status", "updated_at"])
    link = f"{settings.SITE_URL.rstrip('/')}/portal/feedback/{feedback.pk}/"
    email_queue(
        to=_partner_addresses(feedback),
        subject=_("Reply to your feedback: %(subject)s") % {"subject": feedback.subject},
        body_text=render_to_string(
            "emails/feedback_reply.txt", {"feedback": feedback, "reply": reply, "link": link}
        ),
        body_html=render_to_string(
            "emails/feedback_reply.html", {"feedback": feedback, "reply": reply, "link": link}
        ),
        topic="feedback-reply",
    )
    return reply


@transaction.atomic
def feedback_note_add(*, feedback: Feedback, author: User, body: str) -> FeedbackNote:
    """Add an internal note; partners never see it."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": _("Write the note first.")})
    note = FeedbackNote(feedback=feedback, author=author, body=text)
    note.full_clean()
    note.save()
    return note


@transaction.atomic
def feedback_triage(
    *, feedback: Feedback, status: str, assignee: User | None, by: User
) -> Feedback:
    """Set the status and the internal assignee. Raises ValidationError for an unknown status
    or an assignee who is not an internal user."""
    if status not in FeedbackStatus.values:
        raise ValidationError({"status": _("Unknown status %(status)r.") % {"status": status}})
    if assignee is not None and not is_internal(assignee):
        raise ValidationError(
            {"assignee": _("Assign feedback to a colleague, not a partner user.")}
        )
    feedback.status = status
    feedback.assignee = assignee
    feedback.save(update_fields=["status", "assignee", "updated_at"])
    return feedback


FEEDBACK_PER_HOUR = 20
ATTACHMENT_MAX_BYTES = 5 * MB


def _manager_addresses(feedback: Feedback) -> list[str]:
    if feedback.assignee is not None and feedback.assignee.email:
        return [feedback.assignee.email]
    managers = get_user_model().objects.filter(is_active=True, groups__name="sales_manager")
    return sorted({user.email for user in managers if user.email})


def _notify_managers(feedback: Feedback, *, what: str, text: str) -> None:
    link = f"{settings.SITE_URL.rstrip('/')}/workspace/feedback/{feedback.pk}/"
    email_queue(
        to=_manager_addresses(feedback),
        subject=f"{feedback.partner.name}: {what} — {feedback.subject}",
        body_text=f"{feedback.partner.name} — {what}.\n\n{text}\n\n"
        + _("Triage it: %(link)s") % {"link": link}
        + "\n",
        topic="feedback-to-managers",
    )


@transaction.atomic
def feedback_submit(
    *,
    user: User,
    entry: FeedbackEntry,
    attachment: UploadedFile | None = None,
    now: datetime | None = None,
) -> Feedback:
    """A partner user submits feedback for their own organisation.

    Saved even when the broker or mail server is down (the managers' notification waits in
    the outbox). Raises RateLimited (a ValidationError) past FEEDBACK_PER_HOUR submissions in
    an hour, and ValidationError for a bad rating, an over-long message, or an attachment that
    is not a PDF, PNG or JPEG of at most 5 MB (checked by content).
    """
    membership = getattr(user, "partner_membership", None)
    if membership is None or not membership.partner.is_active:
        raise ValidationError(_("Only users of an active partner can submit feedback."))
    now = now or timezone.now()
    # The user's row is locked first, so parallel submissions count one after the other.
    get_user_model().objects.select_for_update(no_key=True).filter(pk=user.pk).exists()
    window = Feedback.objects.filter(submitted_by=user, created_at__gt=now - timedelta(hours=1))
    in_window = list(
        window.order_by("-created_at").values_list("created_at", flat=True)[:FEEDBACK_PER_HOUR]
    )
    if len(in_window) >= FEEDBACK_PER_HOUR:
        frees_up = in_window[-1] + timedelta(hours=1)
        raise RateLimited(
            _(
                "You have sent %(count)s feedback entries in the last hour. "
                "Please wait a little before sending more."
            )
            % {"count": FEEDBACK_PER_HOUR},
            retry_after=(frees_up - now).total_seconds(),
        )
    feedback = Feedback(
        partner=membership.partner,
        submitted_by=user,
        category=entry.category,
        satisfaction=entry.satisfaction,
        nps=entry.nps,
        subject=entry.subject.strip(),
        body=entry.body.strip(),
    )
    if attachment is not None:
        try:
            upload_validate(
                attachment,
                formats={"pdf", "png", "jpeg"},
                max_bytes=ATTACHMENT_MAX_BYTES,
                what=_("attachment"),
            )
        except ValidationError as error:
            raise ValidationError({"attachment": error.messages}) from None
    _feedback_save(feedback)
    if attachment is not None:
        try:
            feedback.attachment.save(attachment.name or "attachment", attachment, save=True)
        except Exception:
            feedback.attachment.delete(save=False)
            raise
    _notify_managers(feedback, what=_("new feedback"), text=feedback.body)
    return feedback


@transaction.atomic
def feedback_follow_up(*, feedback: Feedback, user: User, body: str) -> FeedbackReply:
    """A partner user adds a message to their own feedback's thread; managers are notified.
    Raises ValidationError for an empty or over-long message."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": _("Write a message first.")})
    if len(text) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": _too_long(_("message"))})
    reply = FeedbackReply(feedback=feedback, author=user, body=text)
    reply.full_clean()
    reply.save()
    if feedback.status in (FeedbackStatus.RESOLVED, FeedbackStatus.CLOSED):
        feedback.status = FeedbackStatus.IN_PROGRESS
    feedback.save(update_fields=["status", "updated_at"])
    _notify_managers(feedback, what=_("follow-up"), text=text)
    return reply


@dataclass
class PartnerProfile:
    external_id: str
    name: str
    channel_kind: str
    partner_type: str
    tier: str
    is_active: bool = True
    website: str = ""
    country: str = ""
    notes: str = ""


def _apply_profile(partner: Partner, profile: PartnerProfile) -> Partner:
    for name, value in vars(profile).items():
        setattr(partner, name, value.strip() if isinstance(value, str) else value)
    partner.full_clean()
    # The tier's row is locked while the partner takes it, so it cannot be removed meanwhile
    # (`programme_services.tier_delete`).
    if not Tier.objects.select_for_update().filter(code=partner.tier).exists():
        raise ValidationError({"tier": _("Choose one of the programme's tiers.")})
    partner.save()
    return partner


@transaction.atomic
def partner_create(*, profile: PartnerProfile) -> Partner:
    """Create a partner or distributor, in one of the programme's tiers. Raises
    ValidationError (e.g. a taken external id, a tier the programme does not define)."""
    return _apply_profile(Partner(), profile)


@transaction.atomic
def partner_update(*, partner: Partner, profile: PartnerProfile, by: User | None = None) -> Partner:
    """Change a partner's profile. Moving it to the other channel kind is refused while it
    covers accounts, since those assignments would no longer match their kind. A new tier is
    a manager's tier change, kept in the partner's tier history
    (`programme_services.partner_tier_set`)."""
    if profile.tier != partner.tier:
        partner_tier_set(partner=partner, tier=profile.tier, by=by)
    if profile.channel_kind != partner.channel_kind and partner.coverage_assignments.exists():
        raise ValidationError(
            {
                "channel_kind": _(
                    "This partner covers accounts; end that coverage before changing its kind."
                )
            }
        )
    return _apply_profile(partner, profile)


@transaction.atomic
def partner_contact_add(
    *,
    partner: Partner,
    name: str,
    email: str = "",
    phone: str = "",
    title: str = "",
    is_primary: bool = False,
) -> PartnerContact:
    """Add a contact; a new primary contact replaces the old one as primary."""
    contact = PartnerContact(
        partner=partner,
        name=name.strip(),
        email=email.strip(),
        phone=phone.strip(),
        title=title.strip(),
        is_primary=is_primary,
    )
    contact.full_clean()
    if is_primary:
        partner.contacts.filter(is_primary=True).update(is_primary=False)
    contact.save()
    return contact


@transaction.atomic
def portal_user_invite(*, partner: Partner, email: str, by: User) -> PartnerUser:
    """Create a portal login for `partner` and e-mail a signed link to set its password.

    The link expires after settings.PASSWORD_RESET_TIMEOUT and stops working once used.
    Raises ValidationError when the address already belongs to a user.
    """
    address = email.strip().lower()
    User = get_user_model()
    if not address:
        raise ValidationError({"email": _("Enter the invitee's e-mail address.")})
    if User.objects.filter(Q(username__iexact=address) | Q(email__iexact=address)).exists():
        raise ValidationError(
            {"email": _("%(address)s already has a login.") % {"address": address}}
        )
    if not partner.is_active:
        raise ValidationError(
            _("%(partner)s is deactivated; reactivate it before inviting users.")
            % {"partner": partner.name}
        )
    user = User(username=address, email=address)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user.groups.add(Group.objects.get_or_create(name="partner_user")[0])
    membership = PartnerUser.objects.create(user=user, partner=partner)
    link = settings.SITE_URL.rstrip("/") + invitation_path(user)
    context = {
        "partner": partner,
        "link": link,
        "inviter": by,
        "days": settings.PASSWORD_RESET_TIMEOUT // 86400,
    }
    email_queue(
        to=[address],
        subject=_("Your %(partner)s login to the partner portal") % {"partner": partner.name},
        body_text=render_to_string("emails/portal_invitation.txt", context),
        body_html=render_to_string("emails/portal_invitation.html", context),
        topic="portal-invitation",
    )
    return membership


def invitation_path(user: User) -> str:
    """The signed, expiring path where an invitee sets their password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse(
        "portal:invitation",
        kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)},
    )
