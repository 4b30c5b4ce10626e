"""Writes with business rules for partners and their agreements.

Every function is keyword-only, validates with `full_clean()` and raises ValidationError
with a message a sales manager can act on; nothing is half saved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import IO, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from crm.files import MB, upload_validate
from crm.models import Region, Vertical
from crm.roles import is_internal
from crm.services import email_queue
from partners.models import (
    Agreement,
    AgreementStatus,
    Feedback,
    FeedbackNote,
    FeedbackReply,
    FeedbackStatus,
    Partner,
    PartnerContact,
    PartnerUser,
)
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
    _save(agreement, by=by, terms=terms)
    webhook_agreement_status(agreement=agreement, previous="")
    return agreement


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
        _save(agreement, by=by)
        webhook_agreement_status(agreement=agreement, previous=AgreementStatus.DRAFT)
        return agreement
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
    _save(renewal, by=by, terms=terms)
    webhook_agreement_status(agreement=renewal, previous="")
    return renewal


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


def _feedback_save(feedback: Feedback) -> Feedback:
    if len(feedback.body) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": f"Keep the message to {FEEDBACK_BODY_MAX:,} characters."})
    feedback.full_clean(exclude=["attachment"])
    feedback.save()
    return feedback


@transaction.atomic
def feedback_log_for_partner(*, partner: Partner, entry: FeedbackEntry, by: Any) -> Feedback:
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
def feedback_reply(*, feedback: Feedback, author: Any, body: str) -> FeedbackReply:
    """Add a reply the partner sees, and e-mail the partner's portal users after commit
    (through the outbox, so a broken mail server or broker loses nothing)."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": "Write a reply first."})
    reply = FeedbackReply(feedback=feedback, author=author, body=text)
    if len(text) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": f"Keep the reply to {FEEDBACK_BODY_MAX:,} characters."})
    reply.full_clean()
    reply.save()
    if feedback.status == FeedbackStatus.NEW:
        feedback.status = FeedbackStatus.ACKNOWLEDGED
        feedback.save(update_fields=["status", "updated_at"])
    link = f"{settings.SITE_URL.rstrip('/')}/portal/feedback/{feedback.pk}/"
    email_queue(
        to=_partner_addresses(feedback),
        subject=f"Reply to your feedback: {feedback.subject}",
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
def feedback_note_add(*, feedback: Feedback, author: Any, body: str) -> FeedbackNote:
    """Add an internal note; partners never see it."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": "Write the note first."})
    note = FeedbackNote(feedback=feedback, author=author, body=text)
    note.full_clean()
    note.save()
    return note


@transaction.atomic
def feedback_triage(*, feedback: Feedback, status: str, assignee: Any, by: Any) -> Feedback:
    """Set the status and the internal assignee. Raises ValidationError for an unknown status
    or an assignee who is not an internal user."""
    if status not in FeedbackStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    if assignee is not None and not is_internal(assignee):
        raise ValidationError({"assignee": "Assign feedback to a colleague, not a partner user."})
    feedback.status = status
    feedback.assignee = assignee
    feedback.save(update_fields=["status", "assignee", "updated_at"])
    return feedback


FEEDBACK_PER_HOUR = 20
ATTACHMENT_MAX_BYTES = 5 * MB


def _manager_addresses(feedback: Feedback) -> list[str]:
    if feedback.assignee_id and feedback.assignee.email:
        return [feedback.assignee.email]
    managers = get_user_model().objects.filter(is_active=True, groups__name="sales_manager")
    return sorted({user.email for user in managers if user.email})


def _notify_managers(feedback: Feedback, *, what: str, text: str) -> None:
    link = f"{settings.SITE_URL.rstrip('/')}/workspace/feedback/{feedback.pk}/"
    email_queue(
        to=_manager_addresses(feedback),
        subject=f"{feedback.partner.name}: {what} — {feedback.subject}",
        body_text=f"{feedback.partner.name} — {what}.\n\n{text}\n\nTriage it: {link}\n",
        topic="feedback-to-managers",
    )


@transaction.atomic
def feedback_submit(
    *, user: Any, entry: FeedbackEntry, attachment: UploadedFile | None = None, now: Any = None
) -> Feedback:
    """A partner user submits feedback for their own organisation.

    Saved even when the broker or mail server is down (the managers' notification waits in
    the outbox). Raises ValidationError past FEEDBACK_PER_HOUR submissions in an hour, for a
    bad rating, an over-long message, or an attachment that is not a PDF, PNG or JPEG of at
    most 5 MB (checked by content).
    """
    membership = getattr(user, "partner_membership", None)
    if membership is None or not membership.partner.is_active:
        raise ValidationError("Only users of an active partner can submit feedback.")
    now = now or timezone.now()
    recent = Feedback.objects.filter(
        submitted_by=user, created_at__gte=now - timedelta(hours=1)
    ).count()
    if recent >= FEEDBACK_PER_HOUR:
        raise ValidationError(
            f"You have sent {FEEDBACK_PER_HOUR} feedback entries in the last hour. "
            "Please wait a little before sending more.",
            code="rate_limited",
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
                what="attachment",
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
    _notify_managers(feedback, what="new feedback", text=feedback.body)
    return feedback


@transaction.atomic
def feedback_follow_up(*, feedback: Feedback, user: Any, body: str) -> FeedbackReply:
    """A partner user adds a message to their own feedback's thread; managers are notified.
    Raises ValidationError for an empty or over-long message."""
    text = body.strip()
    if not text:
        raise ValidationError({"body": "Write a message first."})
    if len(text) > FEEDBACK_BODY_MAX:
        raise ValidationError({"body": f"Keep the message to {FEEDBACK_BODY_MAX:,} characters."})
    reply = FeedbackReply(feedback=feedback, author=user, body=text)
    reply.full_clean()
    reply.save()
    if feedback.status in (FeedbackStatus.RESOLVED, FeedbackStatus.CLOSED):
        feedback.status = FeedbackStatus.IN_PROGRESS
    feedback.save(update_fields=["status", "updated_at"])
    _notify_managers(feedback, what="follow-up", text=text)
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
    partner.save()
    return partner


@transaction.atomic
def partner_create(*, profile: PartnerProfile) -> Partner:
    """Create a partner or distributor. Raises ValidationError (e.g. a taken external id)."""
    return _apply_profile(Partner(), profile)


@transaction.atomic
def partner_update(*, partner: Partner, profile: PartnerProfile) -> Partner:
    """Change a partner's profile. Moving it to the other channel kind is refused while it
    covers accounts, since those assignments would no longer match their kind."""
    if profile.channel_kind != partner.channel_kind and partner.coverage_assignments.exists():
        raise ValidationError(
            {
                "channel_kind": "This partner covers accounts; "
                "end that coverage before changing its kind."
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
def portal_user_invite(*, partner: Partner, email: str, by: Any) -> PartnerUser:
    """Create a portal login for `partner` and e-mail a signed link to set its password.

    The link expires after settings.PASSWORD_RESET_TIMEOUT and stops working once used.
    Raises ValidationError when the address already belongs to a user.
    """
    address = email.strip().lower()
    User = get_user_model()
    if not address:
        raise ValidationError({"email": "Enter the invitee's e-mail address."})
    if User.objects.filter(Q(username__iexact=address) | Q(email__iexact=address)).exists():
        raise ValidationError({"email": f"{address} already has a login."})
    if not partner.is_active:
        raise ValidationError(
            f"{partner.name} is deactivated; reactivate it before inviting users."
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
        subject=f"Your {partner.name} login to the partner portal",
        body_text=render_to_string("emails/portal_invitation.txt", context),
        body_html=render_to_string("emails/portal_invitation.html", context),
        topic="portal-invitation",
    )
    return membership


def invitation_path(user: Any) -> str:
    """The signed, expiring path where an invitee sets their password."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return reverse(
        "portal:invitation",
        kwargs={"uidb64": uid, "token": default_token_generator.make_token(user)},
    )
