"""Writes of a deal registration's life: submit, approve or reject, won, lost, withdrawn,
extended, expired (README, "Deal registration").

Every function is keyword-only and raises ValidationError with a message a user can act on:
field errors for bad input, and `RegistrationRefused` (a ValidationError with a code) when the
registration's state or the database refuses the change, which the API answers with 409. Each
change is recorded as a `DealRegistrationEvent`, e-mailed through the outbox and announced to
webhooks in the same transaction, so nothing is half saved or lost when the broker is down.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_stubs_ext import StrOrPromise

from channels.models import CoverageAssignment, Opportunity
from channels.services import CoverageOwner, coverage_assign, coverage_end
from crm.currencies import is_currency_code
from crm.models import Account, Region, SizeBand, Vertical
from crm.names import company_name_key, website_domain
from crm.roles import Role, role_of
from crm.services import email_queue
from partners.models import Partner
from partners.opportunity_services import (
    OpportunityOwner,
    opportunity_create,
    opportunity_lose,
    opportunity_win,
)
from partners.programme_models import Tier
from partners.registration_conflicts import Conflict, registration_conflicts
from partners.registration_facts import (
    EventFacts,
    HeldBackFacts,
    LinkedFacts,
    ProtectedUntilFacts,
    ProtectionEndedFacts,
    StoredConflict,
    WonFacts,
)
from partners.registration_matching import accounts_assigned_to, registration_match
from partners.registration_models import (
    ConflictCode,
    DealRegistration,
    DealRegistrationEvent,
    ExtensionStatus,
    MatchReason,
    RegistrationEventKind,
    RegistrationStatus,
)
from partners.registration_text import (
    conflict_sentence,
    conflicts_shown,
    event_note_in_english,
)
from partners.webhook_models import WebhookEvent
from partners.webhooks import webhook_publish

UNIQUE_APPROVAL = "dealregistration_one_approved_per_account"
MAX_PROTECTED_DAYS = 730
MAX_EXTENSION_DAYS = 365
EXPECTED_CLOSE_YEARS = 5
TEXT_MAX = 5000
REASON_MAX = 2000


class RegistrationRefused(ValidationError):
    """The registration's state, or the one-approval-per-account rule, refuses the change.
    `code` names the conflict (a ConflictCode, or "invalid_state", "already_extended",
    "already_requested"); `conflict` is the stored conflict that refused it, when one did."""

    def __init__(self, message: str, *, code: str, conflict: StoredConflict | None = None) -> None:
        super().__init__(message, code=code)
        self.conflict = conflict


@dataclass
class DealDetails:
    """What a partner tells us about a deal: the fields of the portal form and the API."""

    company_name: str
    region: Region | None = None
    vertical: Vertical | None = None
    size_band: str = ""
    website: str = ""
    offering: str = ""
    amount: Decimal | None = None
    currency: str = "USD"
    expected_close_on: date | None = None
    description: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    # One of the partner's own assigned accounts, by external id; optional.
    account: str = ""


@dataclass(frozen=True)
class TierTerms:
    protection_days: int
    extension_days: int
    auto_approve: bool


def tier_terms(tier: str) -> TierTerms:
    """The protection, extension and auto-approval a partner's tier gives its registrations:
    benefits of the programme's `Tier` (the one place they are set), or the settings' defaults
    without auto-approval for a tier the programme does not define."""
    row = Tier.objects.filter(code=tier).values_list(
        "protection_days", "extension_days", "auto_approve"
    )
    terms = row.first()
    if terms is None:
        return TierTerms(
            protection_days=settings.REGISTRATION_PROTECTION_DAYS,
            extension_days=settings.REGISTRATION_EXTENSION_DAYS,
            auto_approve=False,
        )
    return TierTerms(*terms)


@transaction.atomic
def partner_channel_manager_set(*, partner: Partner, manager: User | None) -> Partner:
    """Name the sales manager who receives the partner's deal registrations (None: every sales
    manager). Raises ValidationError for a user who is not an active sales manager."""
    if manager is not None and (not manager.is_active or role_of(manager) != Role.SALES_MANAGER):
        raise ValidationError({"manager": _("Choose an active sales manager.")})
    partner.channel_manager = manager
    partner.save(update_fields=["channel_manager", "updated_at"])
    return partner


# Notifications --------------------------------------------------------------------------------


def _site(path: str) -> str:
    return settings.SITE_URL.rstrip("/") + path


def _partner_addresses(partner: Partner) -> list[str]:
    return sorted(
        {
            membership.user.email
            for membership in partner.portal_users.select_related("user")
            if membership.user.is_active and membership.user.email
        }
    )


def _manager_addresses(partner: Partner) -> list[str]:
    manager = partner.channel_manager
    if manager is not None and manager.is_active and manager.email:
        return [manager.email]
    managers = get_user_model().objects.filter(is_active=True, groups__name=Role.SALES_MANAGER)
    return sorted({user.email for user in managers if user.email})


def _tell_managers(
    registration: DealRegistration, *, subject: StrOrPromise, topic: str, text: str = ""
) -> None:
    """E-mail the partner's channel manager (every sales manager when it has none) about the
    registration, with its conflicts and the partner's `text`, in the workspace's language."""
    link = _site(f"/workspace/registrations/{registration.pk}/")
    # In the workspace's language, whatever the language of the partner who caused it.
    with translation.override(settings.LANGUAGE_CODE):
        email_queue(
            to=_manager_addresses(registration.partner),
            subject=f"{registration.partner.name}: {subject} — {registration.company_name}",
            body_text=render_to_string(
                "emails/registration_to_managers.txt",
                {
                    "registration": registration,
                    "topic": topic,
                    "conflicts": conflicts_shown(registration.conflicts),
                    "text": text,
                    "link": link,
                },
            ),
            topic=topic,
        )


PARTNER_SUBJECTS = {
    "approved": gettext_lazy("Deal registration approved"),
    "rejected": gettext_lazy("Deal registration rejected"),
    "extended": gettext_lazy("Deal protection extended"),
    "extension_declined": gettext_lazy("Extension declined"),
    "expiring": gettext_lazy("Deal protection ends soon"),
    "expired": gettext_lazy("Deal protection ended"),
}


def _tell_partner(registration: DealRegistration, *, kind: str, note: str = "") -> None:
    """E-mail the partner's users about their registration, in the language they registered
    it in (whoever made the change, in whatever language)."""
    context = {
        "registration": registration,
        "kind": kind,
        "note": note,
        "link": _site(f"/portal/registrations/{registration.pk}/"),
    }
    with translation.override(registration.language or settings.LANGUAGE_CODE):
        email_queue(
            to=_partner_addresses(registration.partner),
            subject=f"{PARTNER_SUBJECTS[kind]}: {registration.company_name}",
            body_text=render_to_string("emails/registration_update.txt", context),
            body_html=render_to_string("emails/registration_update.html", context),
            topic=f"registration-{kind}",
        )


def _publish(registration: DealRegistration, *, previous: str) -> None:
    webhook_publish(
        event=WebhookEvent.REGISTRATION_STATUS,
        data={
            "registration": {
                "id": registration.pk,
                "external_id": registration.external_id,
                "partner": registration.partner.external_id,
                "company_name": registration.company_name,
                "status": registration.status,
                "previous_status": previous,
                "protected_until": registration.protected_until,
                "decision_reason": registration.decision_reason,
                "account": registration.account.external_id if registration.account else None,
            }
        },
    )


def _record(
    registration: DealRegistration,
    *,
    kind: str,
    by: User | None,
    previous: str = "",
    note: str = "",
    facts: EventFacts | None = None,
    partner_visible: bool = True,
) -> None:
    """One step of the history: a person's `note`, or the `facts` of the system's sentence
    (`registration_facts.EventFacts`), worded for each reader; its English kept as the note."""
    DealRegistrationEvent.objects.create(
        registration=registration,
        kind=kind,
        from_status=previous,
        to_status=registration.status if previous != registration.status else "",
        by=by,
        note=(event_note_in_english(facts) if facts else note)[:REASON_MAX],
        facts=facts or {},
        partner_visible=partner_visible,
    )


def _save(registration: DealRegistration, *fields: str) -> None:
    registration.save(update_fields=[*fields, "updated_at"])


def _locked(registration: DealRegistration) -> DealRegistration:
    return (
        DealRegistration.objects.select_for_update(of=("self",))
        .select_related("partner", "account", "region", "vertical", "coverage")
        .get(pk=registration.pk)
    )


# What a refused change was, as the sentence "only submitted registrations can be <action>".
ACTIONS = {
    "approved": gettext_lazy("approved"),
    "rejected": gettext_lazy("rejected"),
    "marked won": gettext_lazy("marked won"),
    "marked lost": gettext_lazy("marked lost"),
    "withdrawn": gettext_lazy("withdrawn"),
    "extended": gettext_lazy("extended"),
    "changed": gettext_lazy("changed"),
}


def _refuse_unless(registration: DealRegistration, *statuses: str, action: str) -> None:
    if registration.status not in statuses:
        allowed = _(" or ").join(str(RegistrationStatus(s).label).lower() for s in statuses)
        raise RegistrationRefused(
            _("%(registration)s is %(status)s; only %(allowed)s registrations can be %(action)s.")
            % {
                "registration": registration.external_id,
                "status": registration.get_status_display().lower(),
                "allowed": allowed,
                "action": ACTIONS[action],
            },
            code="invalid_state",
        )


# Conflicts -------------------------------------------------------------------------------------


def registration_conflicts_refresh(
    *, registration: DealRegistration, day: date, ambiguous_accounts: int = 0
) -> list[StoredConflict]:
    """Compute the registration's conflicts on `day` and store them (and `needs_review`)."""
    conflicts = [
        conflict.as_json()
        for conflict in registration_conflicts(
            registration=registration, day=day, ambiguous_accounts=ambiguous_accounts
        )
    ]
    registration.conflicts = conflicts
    registration.conflict_codes_text = (
        f" {' '.join(c['code'] for c in conflicts)} " if conflicts else ""
    )
    registration.needs_review = bool(conflicts)
    registration.conflicts_checked_at = timezone.now()
    if registration.pk:
        _save(
            registration, "conflicts", "conflict_codes_text", "needs_review", "conflicts_checked_at"
        )
    return conflicts


def _rematch(registration: DealRegistration) -> int:
    """Match the company again (unless a manager or the partner's own id chose the account);
    returns how many accounts it matched when none could be chosen."""
    if registration.match_reason in (MatchReason.MANAGER, MatchReason.EXTERNAL_ID):
        return 0
    if registration.match_reason == MatchReason.CREATED:
        return 0
    result = registration_match(
        partner=registration.partner,
        name_key=registration.name_key,
        domain=registration.domain,
        region_id=registration.region_id,
        exclude_pk=registration.pk,
    )
    registration.account = result.account
    registration.match_reason = result.reason
    return len(result.candidates) if result.ambiguous else 0


# Submitting ------------------------------------------------------------------------------------


def _clean_details(partner: Partner, details: DealDetails, today: date) -> dict[str, Any]:
    """The registration's fields from `details`, or ValidationError naming every bad field."""
    errors: dict[str, str] = {}
    company_name = details.company_name.strip()
    if not company_name:
        errors["company_name"] = _("Enter the company's name.")
    elif len(company_name) > 255:
        errors["company_name"] = _("Keep the company name to 255 characters.")
    website = details.website.strip()
    domain = website_domain(website) if website else ""
    if website and (not domain or len(website) > 255):
        errors["website"] = _("Enter the company's web address, e.g. example.com.")
    own_account = None
    if details.account.strip():
        own_account = (
            accounts_assigned_to(partner)
            .filter(external_id=details.account.strip()[:64])
            .select_related("region", "vertical")
            .first()
        )
        if own_account is None:
            errors["account"] = _(
                "None of your organisation's accounts has this ID; leave it empty to register "
                "a company that is not in your account list."
            )
    region = details.region or (own_account.region if own_account else None)
    vertical = details.vertical or (own_account.vertical if own_account else None)
    size_band = details.size_band or (own_account.size_band if own_account else "")
    if region is None and "account" not in errors:
        errors["region"] = _("Choose the company's region.")
    if vertical is None and "account" not in errors:
        errors["vertical"] = _("Choose the company's industry.")
    if size_band not in SizeBand.values and ("account" not in errors or size_band):
        errors["size_band"] = _("Choose the company's size.")
    if details.amount is not None and (
        not details.amount.is_finite() or details.amount < 0 or details.amount >= Decimal("1e12")
    ):
        errors["amount"] = _("Enter an amount of at least 0 and below one trillion.")
    currency = details.currency.strip().upper()
    if not is_currency_code(currency):
        errors["currency"] = _("Use a three-letter ISO 4217 currency code such as USD, EUR or CNY.")
    close = details.expected_close_on
    if close is not None and close < today:
        errors["expected_close_on"] = _("The expected close date cannot be in the past.")
    elif close is not None and close > today + timedelta(days=365 * EXPECTED_CLOSE_YEARS):
        errors["expected_close_on"] = _("Choose an expected close date within five years.")
    if len(details.description) > TEXT_MAX:
        errors["description"] = _("Keep the description to 5,000 characters.")
    if len(details.offering.strip()) > 200:
        errors["offering"] = _("Keep the offering to 200 characters.")
    contact_email = details.contact_email.strip()
    if contact_email:
        try:
            validate_email(contact_email)
        except ValidationError:
            errors["contact_email"] = _("Enter a valid e-mail address.")
    if errors:
        raise ValidationError(errors)
    return {
        "company_name": company_name,
        "name_key": company_name_key(company_name),
        "website": website,
        "domain": domain,
        "region": region,
        "vertical": vertical,
        "size_band": size_band,
        "offering": details.offering.strip(),
        "amount": details.amount,
        "currency": currency,
        "expected_close_on": close,
        "description": details.description.strip(),
        "contact_name": details.contact_name.strip()[:200],
        "contact_email": contact_email,
        "contact_phone": details.contact_phone.strip()[:50],
        "own_account": own_account,
    }


@transaction.atomic
def registration_submit(
    *, user: User, details: DealDetails, now: datetime | None = None
) -> DealRegistration:
    """A partner user registers a deal for their own organisation.

    The company is matched to an account (`registration_match`) and checked for conflicts; the
    partner's channel manager is e-mailed. When the partner's tier approves automatically and
    nothing conflicts, it is approved at once; an approval refused by a rival approved at the
    same moment leaves it submitted, with the `already_registered` conflict. Raises
    ValidationError for a user of no active partner, more than
    REGISTRATION_SUBMISSIONS_PER_HOUR registrations in an hour, or bad details (by field).
    """
    membership = getattr(user, "partner_membership", None)
    if membership is None or not membership.partner.is_active:
        raise ValidationError(_("Only users of an active partner can register deals."))
    partner = membership.partner
    now = now or timezone.now()
    today = timezone.localdate(now)
    limit = settings.REGISTRATION_SUBMISSIONS_PER_HOUR
    recent = DealRegistration.objects.filter(
        submitted_by=user, submitted_at__gte=now - timedelta(hours=1)
    ).count()
    if recent >= limit:
        raise ValidationError(
            _(
                "You have registered %(count)s deals in the last hour. Please wait a little "
                "before registering more."
            )
            % {"count": limit},
            code="rate_limited",
        )
    fields = _clean_details(partner, details, today)
    own_account = fields.pop("own_account")
    registration = DealRegistration(
        partner=partner,
        submitted_by=user,
        submitted_at=now,
        language=translation.get_language() or settings.LANGUAGE_CODE,
        **fields,
    )
    result = registration_match(
        partner=partner,
        name_key=registration.name_key,
        domain=registration.domain,
        region_id=registration.region_id,
        own_account=own_account,
    )
    registration.account = result.account
    registration.match_reason = result.reason
    # Computed before the row is written, so one INSERT carries them.
    ambiguous = len(result.candidates) if result.ambiguous else 0
    conflicts = registration_conflicts_refresh(
        registration=registration, day=today, ambiguous_accounts=ambiguous
    )
    registration.arrival_conflicts = registration.conflict_codes_text
    # The related objects were just read; the database holds the constraints (checked here
    # they cost a savepoint each, a third of a submission's queries).
    registration.full_clean(
        exclude=["partner", "submitted_by", "region", "vertical", "account"],
        validate_unique=False,
        validate_constraints=False,
    )
    registration.save()
    _record(registration, kind=RegistrationEventKind.SUBMITTED, by=user)
    _tell_managers(registration, subject=gettext_lazy("new deal registration"), topic="reg-new")
    _publish(registration, previous="")
    if not conflicts and tier_terms(partner.tier).auto_approve:
        try:
            with transaction.atomic():
                registration = registration_approve(
                    registration=registration, by=None, today=today, auto=True
                )
        except ValidationError as refusal:  # RegistrationRefused, or no rate for the currency
            conflict = getattr(refusal, "conflict", None)
            registration.refresh_from_db()
            registration_conflicts_refresh(registration=registration, day=today)
            _record(
                registration,
                kind=RegistrationEventKind.AUTO_APPROVAL_REFUSED,
                by=None,
                note=" ".join(refusal.messages),
                facts=HeldBackFacts(what="held_back", conflict=conflict) if conflict else None,
                partner_visible=False,
            )
    return registration


# Deciding --------------------------------------------------------------------------------------


def _prospect_account(registration: DealRegistration, today: date) -> Account:
    """The account a prospect becomes on approval. Its external id derives from the folded
    name, so two rival prospects of one company approved at once make one account, not two."""
    basis = registration.name_key or registration.company_name
    external_id = "PRS-" + hashlib.sha1(basis.encode()).hexdigest()[:12].upper()
    existing = Account.objects.filter(external_id=external_id).first()
    if existing is not None:
        return existing
    account = Account(
        external_id=external_id,
        name=registration.company_name,
        name_key=registration.name_key,
        region=registration.region,
        vertical=registration.vertical,
        size_band=registration.size_band,
        entered_on=today,
    )
    account.full_clean(validate_unique=False)
    try:
        with transaction.atomic():
            account.save()
    except IntegrityError:
        # The rival approval created it a moment ago.
        return Account.objects.get(external_id=external_id)
    return account


def _held_account_id(registration: DealRegistration) -> int:
    """The account an approved (later won or expired) registration protects; the database
    holds that it has one (dealregistration_approved_protects_an_account)."""
    if registration.account_id is None:
        raise ValueError(f"Registration {registration.external_id} protects no account.")
    return registration.account_id


def _held_until(registration: DealRegistration) -> date:
    """The last protected day of an approved registration; the database holds that it has one
    (dealregistration_approved_protects_an_account)."""
    if registration.protected_until is None:
        raise ValueError(f"Registration {registration.external_id} has no protected days.")
    return registration.protected_until


def _is_approval_clash(error: IntegrityError) -> bool:
    diagnostics = getattr(error.__cause__, "diag", None)
    constraint: str | None = getattr(diagnostics, "constraint_name", None)  # psycopg's Diagnostic
    if constraint:
        return constraint == UNIQUE_APPROVAL
    text = str(error)
    return UNIQUE_APPROVAL in text or "partners_dealregistration.account_id" in text


def _approval_clash(registration: DealRegistration, today: date) -> RegistrationRefused:
    holder = (
        DealRegistration.objects.filter(
            account=registration.account, status=RegistrationStatus.APPROVED
        )
        .exclude(pk=registration.pk)
        .select_related("partner")
        .first()
    )
    if holder is None:
        return RegistrationRefused(
            _(
                "Not approved: another registration of this account was approved at the same "
                "moment. Only one registration per account can be protected."
            ),
            code=ConflictCode.ALREADY_REGISTERED,
        )
    conflict = Conflict(
        ConflictCode.ALREADY_REGISTERED,
        {
            "holder": holder.partner.name,
            "registration": holder.external_id,
            "until": holder.protected_until.isoformat() if holder.protected_until else None,
        },
    )
    return RegistrationRefused(
        _("Not approved: %(why)s") % {"why": conflict.message},
        code=ConflictCode.ALREADY_REGISTERED,
        conflict=conflict.as_json(),
    )


def _end_coverage(registration: DealRegistration, on: date) -> None:
    coverage = registration.coverage
    if coverage is None:
        return
    coverage_end(
        assignments=CoverageAssignment.objects.filter(pk=coverage.pk),
        end_date=max(on, coverage.start_date),
    )


def _opportunity_of(registration: DealRegistration, *, by: User | None) -> Opportunity:
    """The partner-sourced opportunity an approved registration became (opened on the day it
    was submitted, for its estimated amount); created now when it has none yet (approved before
    opportunities existed). Raises ValidationError when its currency has no rate."""
    existing = Opportunity.objects.filter(registration=registration).first()
    if existing is not None:
        return existing
    assert registration.account is not None
    submitted = timezone.localdate(registration.submitted_at)
    expected = registration.expected_close_on
    name = registration.company_name
    if registration.offering:
        name = f"{name}: {registration.offering}"
    return opportunity_create(
        account=registration.account,
        owner=OpportunityOwner(
            channel=registration.partner.channel_kind, partner=registration.partner
        ),
        amount=registration.amount or Decimal(0),
        currency=registration.currency,
        opened_on=submitted,
        expected_close_on=expected if expected and expected >= submitted else None,
        name=name[:200],
        registration=registration,
        by=by,
        note=_("From deal registration %(id)s.") % {"id": registration.external_id},
    )


def _lose_opportunity(registration: DealRegistration, *, by: User, on: date, reason: str) -> None:
    """The registration's opportunity, when still open, is lost on `on`."""
    opportunity = Opportunity.objects.filter(registration=registration).first()
    if opportunity is not None and opportunity.is_open:
        opportunity_lose(
            opportunity=opportunity,
            closed_on=max(on, opportunity.opened_on),
            by=by,
            reason=reason,
            today=max(on, opportunity.opened_on),
        )


def _expire_one(registration: DealRegistration, *, today: date) -> None:
    previous = registration.status
    registration.status = RegistrationStatus.EXPIRED
    _save(registration, "status")
    _end_coverage(registration, registration.protected_until or today)
    _record(
        registration,
        kind=RegistrationEventKind.EXPIRED,
        by=None,
        previous=previous,
        facts=ProtectionEndedFacts(
            what="protection_ended",
            day=registration.protected_until.isoformat() if registration.protected_until else None,
        ),
    )
    _tell_partner(registration, kind="expired")
    _publish(registration, previous=previous)


def _expire_lapsed(account: Account, *, today: date) -> None:
    """Expire the approved registrations of `account` whose protection has ended (the daily
    job may not have run yet), so the one-approval rule only ever counts protected ones."""
    lapsed = (
        DealRegistration.objects.select_for_update(of=("self",))
        .select_related("partner", "account", "coverage")
        .filter(account=account, status=RegistrationStatus.APPROVED, protected_until__lt=today)
    )
    for registration in lapsed:
        _expire_one(registration, today=today)


@transaction.atomic
def registration_approve(
    *,
    registration: DealRegistration,
    by: User | None,
    protected_days: int | None = None,
    reason: str = "",
    today: date | None = None,
    auto: bool = False,
) -> DealRegistration:
    """Approve a submitted registration: it protects its account from `today` for
    `protected_days` (default: the partner tier's), the partner covers the account from
    `today` (so the next weekly snapshot counts it), and a prospect becomes an account.

    Conflicts are computed again first; they inform, except `already_registered`, which
    refuses (as the database does when a rival is approved at the same moment). With `auto`,
    any conflict refuses. Raises RegistrationRefused (409) and ValidationError (protected_days
    outside 1-730, a deactivated partner).
    """
    today = today or timezone.localdate()
    registration = _locked(registration)
    _refuse_unless(registration, RegistrationStatus.SUBMITTED, action="approved")
    partner = registration.partner
    if not partner.is_active:
        raise ValidationError(
            _("%(partner)s is deactivated; reactivate it before approving.")
            % {"partner": partner.name}
        )
    terms = tier_terms(partner.tier)
    days = terms.protection_days if protected_days is None else protected_days
    if not 1 <= days <= MAX_PROTECTED_DAYS:
        raise ValidationError(
            {
                "protected_days": _("Protect the deal for 1 to %(days)s days.")
                % {"days": MAX_PROTECTED_DAYS}
            }
        )
    ambiguous = _rematch(registration)
    if ambiguous:
        registration_conflicts_refresh(
            registration=registration, day=today, ambiguous_accounts=ambiguous
        )
        raise RegistrationRefused(
            _("The company matches %(count)s accounts; link the right one before approving.")
            % {"count": ambiguous},
            code=ConflictCode.POSSIBLE_DUPLICATE,
        )
    if registration.account is None:
        registration.account = _prospect_account(registration, today)
        registration.match_reason = MatchReason.CREATED
    account = registration.account
    _expire_lapsed(account, today=today)
    conflicts = registration_conflicts_refresh(registration=registration, day=today)
    _save(registration, "account", "match_reason")
    blocking = [c for c in conflicts if auto or c["code"] == ConflictCode.ALREADY_REGISTERED]
    if blocking:
        raise RegistrationRefused(
            conflict_sentence(blocking[0]), code=blocking[0]["code"], conflict=blocking[0]
        )
    previous = registration.status
    registration.status = RegistrationStatus.APPROVED
    registration.decided_at = timezone.now()
    registration.decided_by = by
    registration.auto_approved = auto
    registration.decision_reason = reason.strip()[:REASON_MAX] or (
        _("Approved automatically: no conflicts, and your agreement covers this segment.")
        if auto
        else ""
    )
    registration.protected_from = today
    registration.protected_until = today + timedelta(days=days)
    registration.extension_status = ExtensionStatus.NONE
    try:
        with transaction.atomic():
            _save(
                registration,
                "status",
                "decided_at",
                "decided_by",
                "auto_approved",
                "decision_reason",
                "protected_from",
                "protected_until",
                "extension_status",
            )
    except IntegrityError as error:
        if not _is_approval_clash(error):
            raise
        raise _approval_clash(registration, today) from None
    covered = coverage_assign(
        accounts=Account.objects.filter(pk=account.pk),
        owner=CoverageOwner(kind=partner.channel_kind, partner=partner),
        start_date=today,
    )
    if covered.created:
        registration.coverage = CoverageAssignment.objects.get(
            account=account,
            kind=partner.channel_kind,
            partner=partner,
            start_date=today,
        )
        _save(registration, "coverage")
    # An approved registration becomes a partner-sourced opportunity (README, "Revenue").
    _opportunity_of(registration, by=by)
    _record(
        registration,
        kind=RegistrationEventKind.AUTO_APPROVED if auto else RegistrationEventKind.APPROVED,
        by=by,
        previous=previous,
        note=registration.decision_reason,
    )
    _tell_partner(registration, kind="approved")
    _publish(registration, previous=previous)
    return registration


def _reason(reason: str, *, required: str | None) -> str:
    text = reason.strip()
    if required and not text:
        raise ValidationError({"reason": required})
    if len(text) > REASON_MAX:
        raise ValidationError({"reason": _("Keep the reason to 2,000 characters.")})
    return text


@transaction.atomic
def registration_reject(
    *, registration: DealRegistration, by: User, reason: str
) -> DealRegistration:
    """Reject a submitted registration with a reason the partner reads. Raises ValidationError
    without a reason, RegistrationRefused when it is not submitted."""
    text = _reason(
        reason, required=_("Say why the registration is rejected; the partner reads it.")
    )
    registration = _locked(registration)
    _refuse_unless(registration, RegistrationStatus.SUBMITTED, action="rejected")
    previous = registration.status
    registration.status = RegistrationStatus.REJECTED
    registration.decided_at = timezone.now()
    registration.decided_by = by
    registration.decision_reason = text
    _save(registration, "status", "decided_at", "decided_by", "decision_reason")
    _record(registration, kind=RegistrationEventKind.REJECTED, by=by, previous=previous, note=text)
    _tell_partner(registration, kind="rejected")
    _publish(registration, previous=previous)
    return registration


@transaction.atomic
def registration_mark_won(
    *,
    registration: DealRegistration,
    by: User,
    amount: Decimal,
    closed_on: date,
    today: date | None = None,
) -> DealRegistration:
    """Record the deal won for `amount` on `closed_on`, and convert its account through the
    partner's channel kind ("partner" or "distribution") unless it had converted already.

    Raises ValidationError for a negative amount or a close date in the future or before the
    registration was submitted; RegistrationRefused unless it is approved (or expired: a deal
    can close just after its protection ends).
    """
    today = today or timezone.localdate()
    errors: dict[str, str] = {}
    if amount is None or not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
        errors["amount"] = _("Enter the amount won, at least 0.")
    registration = _locked(registration)
    if closed_on > today:
        errors["closed_on"] = _("The close date cannot be in the future.")
    elif closed_on < timezone.localdate(registration.submitted_at):
        errors["closed_on"] = _(
            "The close date cannot be before the registration was submitted (%(day)s)."
        ) % {"day": date_format(timezone.localdate(registration.submitted_at))}
    if errors:
        raise ValidationError(errors)
    _refuse_unless(
        registration, RegistrationStatus.APPROVED, RegistrationStatus.EXPIRED, action="marked won"
    )
    previous = registration.status
    registration.status = RegistrationStatus.WON
    registration.closed_on = closed_on
    registration.won_amount = amount
    _save(registration, "status", "closed_on", "won_amount")
    opportunity = _opportunity_of(registration, by=by)
    if opportunity.is_open:
        opportunity_win(
            opportunity=opportunity, closed_on=closed_on, amount=amount, by=by, today=today
        )
    account = Account.objects.select_for_update().get(pk=_held_account_id(registration))
    converted = ""
    if account.converted_on is None:
        account.converted_on = closed_on
        account.converted_via = registration.partner.channel_kind
        account.save(update_fields=["converted_on", "converted_via", "updated_at"])
        converted = account.name
    facts = WonFacts(
        what="won",
        amount=str(amount),
        currency=registration.currency,
        closed_on=closed_on.isoformat(),
        converted=converted,
    )
    _record(registration, kind=RegistrationEventKind.WON, by=by, previous=previous, facts=facts)
    _publish(registration, previous=previous)
    return registration


@transaction.atomic
def registration_mark_lost(
    *, registration: DealRegistration, by: User, reason: str = "", today: date | None = None
) -> DealRegistration:
    """Record an approved deal lost; the coverage its approval created ends `today`. Raises
    RegistrationRefused unless it is approved."""
    today = today or timezone.localdate()
    text = _reason(reason, required=None)
    registration = _locked(registration)
    _refuse_unless(registration, RegistrationStatus.APPROVED, action="marked lost")
    previous = registration.status
    registration.status = RegistrationStatus.LOST
    registration.closed_on = today
    if text:
        registration.decision_reason = text
    _save(registration, "status", "closed_on", "decision_reason")
    _end_coverage(registration, today)
    _lose_opportunity(registration, by=by, on=today, reason=text)
    _record(registration, kind=RegistrationEventKind.LOST, by=by, previous=previous, note=text)
    _publish(registration, previous=previous)
    return registration


def _own(registration: DealRegistration, user: User) -> None:
    membership = getattr(user, "partner_membership", None)
    if membership is None or membership.partner_id != registration.partner_id:
        raise ValidationError(_("Only the registering partner's users can do this."))


@transaction.atomic
def registration_withdraw(
    *, registration: DealRegistration, user: User, reason: str = "", today: date | None = None
) -> DealRegistration:
    """The partner withdraws its registration (submitted or approved); an approval's coverage
    ends `today`. Raises RegistrationRefused when it is already closed."""
    today = today or timezone.localdate()
    _own(registration, user)
    text = _reason(reason, required=None)
    registration = _locked(registration)
    _refuse_unless(
        registration, RegistrationStatus.SUBMITTED, RegistrationStatus.APPROVED, action="withdrawn"
    )
    previous = registration.status
    registration.status = RegistrationStatus.WITHDRAWN
    _save(registration, "status")
    if previous == RegistrationStatus.APPROVED:
        _end_coverage(registration, today)
        _lose_opportunity(
            registration, by=user, on=today, reason=text or _("The partner withdrew the deal.")
        )
    _record(
        registration, kind=RegistrationEventKind.WITHDRAWN, by=user, previous=previous, note=text
    )
    _tell_managers(
        registration,
        subject=gettext_lazy("registration withdrawn"),
        text=text,
        topic="reg-withdrawn",
    )
    _publish(registration, previous=previous)
    return registration


@transaction.atomic
def registration_request_extension(
    *, registration: DealRegistration, user: User, note: str = ""
) -> DealRegistration:
    """The partner asks once for more protection on an approved registration; the managers are
    e-mailed. Raises RegistrationRefused unless approved and not yet extended or asked."""
    _own(registration, user)
    text = _reason(note, required=None)
    registration = _locked(registration)
    _refuse_unless(registration, RegistrationStatus.APPROVED, action="extended")
    if registration.extension_status == ExtensionStatus.REQUESTED:
        raise RegistrationRefused(
            _("An extension has already been requested."), code="already_requested"
        )
    if registration.extension_status != ExtensionStatus.NONE:
        raise RegistrationRefused(
            _("The protection can be extended once; it has been already."),
            code="already_extended",
        )
    registration.extension_status = ExtensionStatus.REQUESTED
    registration.extension_note = text
    _save(registration, "extension_status", "extension_note")
    _record(registration, kind=RegistrationEventKind.EXTENSION_REQUESTED, by=user, note=text)
    _tell_managers(
        registration, subject=gettext_lazy("extension requested"), text=text, topic="reg-extension"
    )
    return registration


@transaction.atomic
def registration_extend(
    *, registration: DealRegistration, by: User, days: int | None = None
) -> DealRegistration:
    """Extend an approved registration's protection once by `days` (default: the tier's
    extension), whether or not the partner asked. Raises ValidationError for days outside
    1-365, RegistrationRefused unless approved and not extended before."""
    registration = _locked(registration)
    extra = tier_terms(registration.partner.tier).extension_days if days is None else days
    if not 1 <= extra <= MAX_EXTENSION_DAYS:
        raise ValidationError(
            {"days": _("Extend by 1 to %(days)s days.") % {"days": MAX_EXTENSION_DAYS}}
        )
    _refuse_unless(registration, RegistrationStatus.APPROVED, action="extended")
    if registration.extension_status in (ExtensionStatus.GRANTED, ExtensionStatus.DECLINED):
        raise RegistrationRefused(
            _(
                "%(registration)s's protection was extended once already (or the request "
                "declined); it cannot be extended again."
            )
            % {"registration": registration.external_id},
            code="already_extended",
        )
    until = _held_until(registration) + timedelta(days=extra)
    registration.protected_until = until
    registration.extension_status = ExtensionStatus.GRANTED
    _save(registration, "protected_until", "extension_status")
    _record(
        registration,
        kind=RegistrationEventKind.EXTENDED,
        by=by,
        facts=ProtectedUntilFacts(what="protected_until", day=until.isoformat()),
    )
    _tell_partner(registration, kind="extended")
    return registration


@transaction.atomic
def registration_decline_extension(
    *, registration: DealRegistration, by: User, reason: str
) -> DealRegistration:
    """Decline the partner's extension request with a reason it reads. Raises ValidationError
    without a reason, RegistrationRefused when no request is open."""
    text = _reason(reason, required=_("Say why the extension is declined; the partner reads it."))
    registration = _locked(registration)
    if (
        registration.status != RegistrationStatus.APPROVED
        or registration.extension_status != ExtensionStatus.REQUESTED
    ):
        raise RegistrationRefused(
            _("%(registration)s has no open extension request.")
            % {"registration": registration.external_id},
            code="invalid_state",
        )
    registration.extension_status = ExtensionStatus.DECLINED
    _save(registration, "extension_status")
    _record(registration, kind=RegistrationEventKind.EXTENSION_DECLINED, by=by, note=text)
    _tell_partner(registration, kind="extension_declined", note=text)
    return registration


@transaction.atomic
def registration_link_account(
    *, registration: DealRegistration, by: User, account: Account | None, today: date | None = None
) -> DealRegistration:
    """A manager names the account a submitted registration is about (None: a prospect, made
    an account on approval); its conflicts are computed again. Raises RegistrationRefused
    unless it is submitted."""
    today = today or timezone.localdate()
    registration = _locked(registration)
    _refuse_unless(registration, RegistrationStatus.SUBMITTED, action="changed")
    registration.account = account
    registration.match_reason = MatchReason.MANAGER if account else MatchReason.NONE
    _save(registration, "account", "match_reason")
    registration_conflicts_refresh(registration=registration, day=today)
    _record(
        registration,
        kind=RegistrationEventKind.ACCOUNT_LINKED,
        by=by,
        facts=LinkedFacts(what="linked", account=str(account) if account else ""),
        partner_visible=False,
    )
    return registration


# The daily job ---------------------------------------------------------------------------------


def registrations_expire(*, today: date) -> int:
    """Expire approved registrations whose protection ended before `today` (the coverage their
    approval created ends on the last protected day) and tell the partners. Idempotent; one
    transaction per registration. Returns how many expired."""
    expired = 0
    due = DealRegistration.objects.filter(
        status=RegistrationStatus.APPROVED, protected_until__lt=today
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            registration = _locked(DealRegistration(pk=pk))
            if (
                registration.status == RegistrationStatus.APPROVED
                and _held_until(registration) < today
            ):
                _expire_one(registration, today=today)
                expired += 1
    return expired


def registrations_warn_expiring(*, today: date) -> int:
    """E-mail the partners whose approved registrations' protection ends within
    REGISTRATION_EXPIRY_WARNING_DAYS, once per protection end (an extension earns a new
    warning). Returns how many were warned."""
    horizon = today + timedelta(days=settings.REGISTRATION_EXPIRY_WARNING_DAYS)
    warned = 0
    due = DealRegistration.objects.filter(
        status=RegistrationStatus.APPROVED,
        protected_until__gte=today,
        protected_until__lte=horizon,
    ).values_list("pk", flat=True)
    for pk in list(due):
        with transaction.atomic():
            registration = _locked(DealRegistration(pk=pk))
            if (
                registration.status != RegistrationStatus.APPROVED
                or registration.expiry_warned_for == registration.protected_until
            ):
                continue
            registration.expiry_warned_for = registration.protected_until
            _save(registration, "expiry_warned_for")
            _tell_partner(registration, kind="expiring")
            warned += 1
    return warned
