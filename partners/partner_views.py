"""Partners and distributors in the sales managers' workspace, and portal invitations."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model, login
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.tokens import default_token_generator
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels.models import CoverageAssignment
from channels.selectors import active_coverage_q
from crm.exports import EXPORT_FORMATS, export_response, labelled, yes_no
from crm.filters import filters_for_page, old_bookmark_redirect
from crm.forms import StyledFormMixin, form_add_service_errors
from crm.idempotency import once_per_form_token
from crm.pagination import list_queries
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from crm.rules import in_market_q
from crm.services import api_tokens_revoke_all
from partners.filters import PartnerFilter
from partners.models import Partner, PartnerKind, PartnerType, PartnerUser
from partners.partner_forms import ContactForm, InviteForm, PartnerForm
from partners.programme_selectors import entry_tier, tier_choices
from partners.selectors import (
    AccountListFilter,
    agreements_visible_to,
    feedback_visible_to,
    partner_account_counts,
    partners_visible_to,
)
from partners.services import (
    partner_contact_add,
    partner_create,
    partner_update,
    portal_user_invite,
)

PAGE_SIZE = 50


def _accounts_covered(partners: Iterable[Partner | int], day: date) -> dict[int, int]:
    """Accounts in the market assigned to each partner on `day` (as the account list's
    partner filter shows them), counted only for the partners given."""
    rows = (
        CoverageAssignment.objects.filter(active_coverage_q(day), partner__in=list(partners))
        .filter(in_market_q(day, "account__"))
        .values("partner_id")
        .annotate(accounts=Count("account_id", distinct=True))
    )
    return {row["partner_id"]: row["accounts"] for row in rows}


# A list page counts each partner's accounts at most this long ago: at a million accounts a
# page of partners covers most of them, and counting them on every view is the page's whole
# cost. A partner's own page and the exports count now.
COVERING_COUNT_SECONDS = 60


def _accounts_covered_recently(
    partners: Iterable[Partner], day: date
) -> tuple[dict[int, int], datetime]:
    """`_accounts_covered` for the partners given, each count at most
    COVERING_COUNT_SECONDS old; also when the oldest of them was counted."""
    keys = {partner.pk: f"partners:covering:{day.isoformat()}:{partner.pk}" for partner in partners}
    known = cache.get_many(list(keys.values()))
    missing = [pk for pk, key in keys.items() if key not in known]
    now = timezone.now()
    if missing:
        counted = _accounts_covered(missing, day)
        fresh = {keys[pk]: (counted.get(pk, 0), now) for pk in missing}
        cache.set_many(fresh, COVERING_COUNT_SECONDS)
        known.update(fresh)
    counts = {pk: known[key][0] for pk, key in keys.items()}
    oldest = min((known[key][1] for key in keys.values()), default=now)
    return counts, oldest


def partner_page(request: HttpRequest, *, kind: str, title: str) -> HttpResponseBase:
    # Links written before the list's FilterSet: ?type= and ?active=yes/no.
    if old := old_bookmark_redirect(
        request,
        renamed={"type": "partner_type", "active": "is_active"},
        values={"is_active": {"yes": "true", "no": "false"}},
    ):
        return old
    filters, params = filters_for_page(
        PartnerFilter, request, queryset=partners_visible_to(request.user, kind=kind)
    )
    partners = filters.qs
    tiers = tier_choices()
    today = timezone.localdate()
    if request.GET.get("format") in EXPORT_FORMATS:
        columns = ("external_id", "name", "channel_kind", "partner_type", "tier", "is_active")
        covering = _accounts_covered(partners, today)
        kinds, types = labelled(PartnerKind.choices), labelled(PartnerType.choices)
        tier_labels = dict(tiers)
        header = [
            _("External id"),
            _("Name"),
            _("Kind"),
            _("Type"),
            _("Tier"),
            _("Active"),
            _("Accounts assigned today"),
        ]
        return export_response(
            fmt=request.GET["format"],
            filename="distributors" if kind == PartnerKind.DISTRIBUTION else "partners",
            header=[str(h) for h in header],
            rows=(
                (
                    external_id,
                    name,
                    kinds.get(channel_kind, channel_kind),
                    types.get(partner_type, partner_type),
                    tier_labels.get(tier, tier),
                    yes_no(is_active),
                    covering.get(pk, 0),
                )
                for pk, external_id, name, channel_kind, partner_type, tier, is_active in (
                    partners.values_list("pk", *columns)
                )
            ),
        )
    page = Paginator(partners, PAGE_SIZE).get_page(request.GET.get("page"))
    covering, counted_at = _accounts_covered_recently(page.object_list, today)
    return render(
        request,
        "partners/partner_list.html",
        {
            "page": page,
            "rows": [(partner, covering.get(partner.pk, 0)) for partner in page],
            "counted_at": counted_at,
            "title": title,
            "kind": kind,
            "params": params,
            "filters": filters,
            **list_queries(request.GET),
            "types": PartnerType.choices,
            "tiers": tiers,
        },
    )


def _partner_coverage(partner: Partner, today: date) -> dict[str, dict[str, int | str]]:
    """The partner's accounts today, each count with the account list that shows exactly
    those accounts: assigned to it, counted (an agreement of its own in force grants the
    segment) and the difference, assigned outside an agreement."""
    counts = partner_account_counts(partner=partner, day=today)
    figures: dict[str, dict[str, int | str]] = {}
    for key, coverage in (("assigned", ""), ("counted", "any"), ("outside", "outside")):
        account_filter = AccountListFilter(partner=partner.pk, coverage=coverage)
        figures[key] = {
            "count": counts[key],
            "url": reverse("partners:account_list") + "?" + urlencode(account_filter.query()),
        }
    return figures


@internal_required
def partner_detail(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    today = timezone.localdate()
    manage = can_manage(request.user)
    return render(
        request,
        "partners/partner_detail.html",
        {
            "partner": partner,
            "contacts": partner.contacts.all(),
            "portal_users": partner.portal_users.select_related("user")
            .annotate(api_token_count=Count("user__api_tokens"))
            .order_by("user__username"),
            "agreements": agreements_visible_to(request.user)
            .filter(partner=partner)
            .order_by("-start_date"),
            "feedback": feedback_visible_to(request.user)
            .filter(partner=partner)
            .order_by("-created_at")[:20],
            "coverage": _partner_coverage(partner, today),
            "can_manage": manage,
            "contact_form": ContactForm() if manage else None,
            "invite_form": InviteForm() if manage else None,
        },
    )


@manager_required
@once_per_form_token
def partner_create_view(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", PartnerKind.PARTNER)
    form = PartnerForm(
        initial={
            "channel_kind": kind if kind in PartnerKind.values else PartnerKind.PARTNER,
            "is_active": True,
            "tier": entry_tier(),
        }
    )
    if request.method == "POST":
        form = PartnerForm(request.POST)
        if form.is_valid():
            try:
                partner = partner_create(profile=form.profile())
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("%(partner)s created.") % {"partner": partner.name})
                return redirect("partners:partner_detail", pk=partner.pk)
    return render(
        request,
        "partners/partner_form.html",
        {"form": form, "title": _("New partner or distributor")},
    )


@manager_required
def partner_edit_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    fields = (
        "name",
        "external_id",
        "channel_kind",
        "partner_type",
        "tier",
        "is_active",
        "website",
        "country",
        "notes",
    )
    form = PartnerForm(initial={name: getattr(partner, name) for name in fields})
    if request.method == "POST":
        form = PartnerForm(request.POST)
        if form.is_valid():
            try:
                partner_update(partner=partner, profile=form.profile(), by=request.user)
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("%(partner)s saved.") % {"partner": partner.name})
                return redirect("partners:partner_detail", pk=partner.pk)
    return render(
        request,
        "partners/partner_form.html",
        {
            "form": form,
            "partner": partner,
            "title": _("Edit %(partner)s") % {"partner": partner.name},
        },
    )


@manager_required
@require_POST
@once_per_form_token
def contact_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    form = ContactForm(request.POST)
    if form.is_valid():
        try:
            partner_contact_add(partner=partner, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("Contact %(name)s added.") % {"name": form.cleaned_data["name"]}
            )
    else:
        for field, errors in form.errors.items():
            messages.error(
                request,
                f"{form.fields[field].label or field.title()}: {' '.join(map(str, errors))}",
            )
    return redirect("partners:partner_detail", pk=partner.pk)


@manager_required
@require_POST
@once_per_form_token
def portal_user_invite_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    form = InviteForm(request.POST)
    if form.is_valid():
        try:
            portal_user_invite(partner=partner, email=form.cleaned_data["email"], by=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": form.cleaned_data["email"]}
            )
    else:
        messages.error(request, _("Enter a valid e-mail address to invite."))
    return redirect("partners:partner_detail", pk=partner.pk)


@manager_required
@require_POST
def portal_user_revoke_tokens_view(
    request: AuthenticatedHttpRequest, pk: int, user_pk: int
) -> HttpResponse:
    """End every API token of one of the partner's portal users."""
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    membership = get_object_or_404(partner.portal_users.select_related("user"), user_id=user_pk)
    count = api_tokens_revoke_all(user=membership.user, by=request.user, request=request)
    messages.success(request, f"{count} API token(s) of {membership.user.get_username()} revoked.")
    return redirect("partners:partner_detail", pk=partner.pk)


# SetPasswordForm is generic in the type stubs only.
class StyledSetPasswordForm(StyledFormMixin, SetPasswordForm):  # type: ignore[type-arg]
    pass


def portal_invitation(request: HttpRequest, uidb64: str, token: str) -> HttpResponse:
    """Anyone holding a valid, unexpired, unused link may set the invitee's password."""
    try:
        user = get_user_model().objects.get(pk=int(force_str(urlsafe_base64_decode(uidb64))))
    except (ValueError, TypeError, OverflowError, get_user_model().DoesNotExist):
        user = None
    valid = (
        user is not None
        and PartnerUser.objects.filter(user=user, partner__is_active=True).exists()
        and default_token_generator.check_token(user, token)
    )
    if user is None or not valid:
        return render(request, "partners/portal/invitation_invalid.html", status=400)
    form = StyledSetPasswordForm(user)
    if request.method == "POST":
        with transaction.atomic():
            # The link is used once: the invitee's row is locked and the link checked again,
            # so of two submissions at the same moment the second finds it spent.
            user = get_user_model().objects.select_for_update().get(pk=user.pk)
            if not default_token_generator.check_token(user, token):
                return render(request, "partners/portal/invitation_invalid.html", status=400)
            form = StyledSetPasswordForm(user, request.POST)
            if form.is_valid():
                form.save()
                login(request, user, backend="partners.auth.ActivePartnerBackend")
                return redirect("portal:home")
    return render(request, "partners/portal/invitation.html", {"form": form, "invitee": user})
