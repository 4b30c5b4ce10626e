"""Deal registrations in the workspace: the managers' queue, a registration with its conflicts,
matches and history, the decisions, the per-tier rules, and a partner's registrations."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels.selectors import internal_accounts_visible_to
from crm.exports import EXPORT_FORMATS, export_response, labelled, yes_no
from crm.filters import filters_for_page
from crm.forms import form_add_service_errors, object_id
from crm.models import SizeBand
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.filters import DealRegistrationFilter
from partners.registration_conflicts import registration_conflicts
from partners.registration_forms import (
    ApproveForm,
    ChannelManagerForm,
    DeclineExtensionForm,
    ExtendForm,
    LinkAccountForm,
    LostForm,
    RejectForm,
    WonForm,
)
from partners.registration_matching import (
    AccountCandidate,
    registration_match,
    similar_registrations,
    similarity_reasons,
)
from partners.registration_models import (
    ConflictCode,
    DealRegistration,
    RegistrationStatus,
)
from partners.registration_selectors import (
    business_days_between,
    decision_clocks,
    decision_due_on,
    registration_events_visible_to,
    registration_summary,
    registrations_visible_to,
)
from partners.registration_services import (
    RegistrationRefused,
    partner_channel_manager_set,
    registration_approve,
    registration_decline_extension,
    registration_extend,
    registration_link_account,
    registration_mark_lost,
    registration_mark_won,
    registration_reject,
    tier_terms,
)
from partners.registration_text import conflicts_shown, event_note
from partners.selectors import accounts_visible_to, partners_visible_to

PAGE_SIZE = 50


def _filtered(
    request: HttpRequest,
) -> tuple[QuerySet[DealRegistration], dict[str, str], DealRegistrationFilter]:
    """The queue's rows for its GET parameters, read through `DealRegistrationFilter` as the API
    reads them. The queue opens on the submitted registrations (`status=` shows them all)."""
    registrations = registrations_visible_to(request.user).select_related(
        "partner", "region", "vertical", "account"
    )
    filters, params = filters_for_page(
        DealRegistrationFilter,
        request,
        queryset=registrations,
        defaults={"status": RegistrationStatus.SUBMITTED},
    )
    return filters.qs, params, filters


class QueueRow(TypedDict):
    """A registration as the queue and its detail page show it: its age in business days
    and the day its decision is due."""

    registration: DealRegistration
    age: int
    due_on: date
    overdue: bool


def _row(registration: DealRegistration, today: date) -> QueueRow:
    submitted_on = timezone.localdate(registration.submitted_at)
    due = decision_due_on(submitted_on)
    return {
        "registration": registration,
        "age": business_days_between(submitted_on, today),
        "due_on": due,
        "overdue": registration.status == RegistrationStatus.SUBMITTED and due < today,
    }


def _export(fmt: str, registrations: QuerySet[DealRegistration]) -> HttpResponseBase:
    """The queue's rows for people: headers in the reader's language, names and labels."""
    statuses, size_bands = labelled(RegistrationStatus.choices), labelled(SizeBand.choices)
    conflicts = labelled(ConflictCode.choices)
    header = [
        _("External id"),
        _("Submitted"),
        _("Partner id"),
        _("Partner"),
        _("Company"),
        _("Website"),
        _("Region"),
        _("Vertical"),
        _("Size band"),
        _("Offering"),
        _("Amount"),
        _("Currency"),
        _("Expected close"),
        _("Status"),
        _("Needs review"),
        _("Conflicts"),
        _("Account id"),
        _("Protected until"),
        _("Decision reason"),
    ]
    rows = (
        [
            r.external_id,
            r.submitted_at,
            r.partner.external_id,
            r.partner.name,
            r.company_name,
            r.website,
            r.region.display_name,
            r.vertical.display_name,
            size_bands.get(r.size_band, r.size_band),
            r.offering,
            r.amount,
            r.currency,
            r.expected_close_on,
            statuses.get(r.status, r.status),
            yes_no(r.needs_review),
            "; ".join(conflicts.get(code, code) for code in r.conflict_codes),
            r.account.external_id if r.account else "",
            r.protected_until,
            r.decision_reason,
        ]
        for r in registrations.iterator(chunk_size=2000)
    )
    return export_response(
        fmt=fmt, filename="registrations", header=[str(h) for h in header], rows=rows
    )


@internal_required
def registration_queue(request: HttpRequest) -> HttpResponseBase:
    registrations, params, filters = _filtered(request)
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export(request.GET["format"], registrations)
    page = Paginator(registrations, PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    query = request.GET.copy()
    query.pop("page", None)
    everywhere = query.copy()
    everywhere.pop("account", None)
    return render(
        request,
        "partners/registration_queue.html",
        {
            "page": page,
            "clocks": decision_clocks(list(page), today),
            "params": params,
            "filters": filters,
            "querystring": query.urlencode(),
            "querystring_without_account": everywhere.urlencode(),
            "statuses": RegistrationStatus.choices,
            "conflict_codes": ConflictCode.choices,
            "partners": partners_visible_to(request.user)
            .order_by("name")
            .values_list("id", "name"),
            "size_bands": SizeBand.choices,
            "account": internal_accounts_visible_to(request.user).filter(pk=account_id).first()
            if (account_id := object_id(params["account"]))
            else None,
            "deadline_days": settings.REGISTRATION_DECISION_BUSINESS_DAYS,
        },
    )


def _registration_for(request: HttpRequest, pk: int) -> DealRegistration:
    return get_object_or_404(
        registrations_visible_to(request.user).select_related(
            "partner", "region", "vertical", "account", "submitted_by", "decided_by", "coverage"
        ),
        pk=pk,
    )


ACTION_FORMS: dict[str, type[Form]] = {
    "approve": ApproveForm,
    "reject": RejectForm,
    "won": WonForm,
    "lost": LostForm,
    "extend": ExtendForm,
    "decline": DeclineExtensionForm,
    "link": LinkAccountForm,
}


def _render_detail(
    request: HttpRequest,
    registration: DealRegistration,
    *,
    bound: tuple[str, Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The registration page; `bound` is a decision form shown again with its errors."""
    today = timezone.localdate()
    manage = can_manage(request.user)
    live = None
    candidates: list[AccountCandidate] = []
    if registration.status == RegistrationStatus.SUBMITTED:
        match = registration_match(
            partner=registration.partner,
            name_key=registration.name_key,
            domain=registration.domain,
            region_id=registration.region_id,
            exclude_pk=registration.pk,
        )
        # What the asker may see: a rep, only the accounts it works.
        visible = set(
            accounts_visible_to(request.user)
            .filter(pk__in=[c.account.pk for c in match.candidates])
            .values_list("pk", flat=True)
        )
        candidates = [c for c in match.candidates if c.account.pk in visible]
        live = registration_conflicts(
            registration=registration,
            day=today,
            ambiguous_accounts=len(match.candidates) if match.ambiguous else 0,
        )
    blocked = any(c.code == ConflictCode.ALREADY_REGISTERED for c in live or [])
    similar = [
        {"registration": other, "reasons": similarity_reasons(registration, other)}
        for other in similar_registrations(registration).filter(
            pk__in=registrations_visible_to(request.user).values("pk")
        )[:10]
    ]
    forms: dict[str, Form | None] = {}
    for name, form_class in ACTION_FORMS.items():
        if not manage:
            forms[name] = None
        elif bound is not None and bound[0] == name:
            forms[name] = bound[1]
        else:
            initial: dict[str, date | Decimal] = {"closed_on": today} if name == "won" else {}
            if name == "won" and registration.amount is not None:
                initial["amount"] = registration.amount
            forms[name] = form_class(prefix=name, initial=initial)
    return render(
        request,
        "partners/registration_detail.html",
        {
            "registration": registration,
            "row": _row(registration, today),
            "live": live is not None,
            "conflicts": conflicts_shown(
                [c.as_json() for c in live] if live is not None else registration.conflicts
            ),
            "candidates": candidates,
            "similar": similar,
            "events": [
                {"event": event, "note": event_note(event)}
                for event in registration_events_visible_to(request.user, registration)
            ],
            "can_manage": manage,
            "approval_blocked": blocked,
            "forms": forms,
            "terms": tier_terms(registration.partner.tier),
        },
        status=status,
    )


@internal_required
def registration_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, _registration_for(request, pk))


def _decide(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    registration = _registration_for(request, pk)
    form = ACTION_FORMS[action](request.POST, prefix=action)
    if form.is_valid():
        data = form.cleaned_data
        try:
            done = _apply(request, registration, action, data)
        except RegistrationRefused as refusal:
            messages.error(request, " ".join(refusal.messages))
            return _render_detail(request, _registration_for(request, pk), status=409)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, done)
            return redirect("registrations:detail", pk=registration.pk)
    return _render_detail(request, registration, bound=(action, form), status=400)


def _apply(
    request: AuthenticatedHttpRequest,
    registration: DealRegistration,
    action: str,
    data: dict[str, Any],
) -> str:
    by = request.user
    if action == "approve":
        approved = registration_approve(
            registration=registration,
            by=by,
            protected_days=data["protected_days"],
            reason=data["reason"],
        )
        return _(
            "%(registration)s approved: %(partner)s covers %(account)s from today, protected "
            "until %(day)s."
        ) % {
            "registration": approved.external_id,
            "partner": approved.partner.name,
            "account": approved.account.name if approved.account else approved.company_name,
            "day": date_format(approved.protected_until) if approved.protected_until else "",
        }
    if action == "reject":
        registration_reject(registration=registration, by=by, reason=data["reason"])
        return _("%(registration)s rejected; the partner is told why.") % {
            "registration": registration.external_id
        }
    if action == "won":
        registration_mark_won(
            registration=registration, by=by, amount=data["amount"], closed_on=data["closed_on"]
        )
        return _("%(registration)s marked won.") % {"registration": registration.external_id}
    if action == "lost":
        registration_mark_lost(registration=registration, by=by, reason=data["reason"])
        return _("%(registration)s marked lost; its coverage ended today.") % {
            "registration": registration.external_id
        }
    if action == "extend":
        extended = registration_extend(registration=registration, by=by, days=data["days"])
        return _("Protection extended until %(day)s.") % {
            "day": date_format(extended.protected_until) if extended.protected_until else ""
        }
    if action == "decline":
        registration_decline_extension(registration=registration, by=by, reason=data["reason"])
        return _("Extension declined; the partner is told why.")
    external_id = data["account"].strip()
    account = None
    if external_id:
        account = accounts_visible_to(by).filter(external_id=external_id).first()
        if account is None:
            raise ValidationError(
                {"account": _("No account has the external id %(id)r.") % {"id": external_id}}
            )
    registration_link_account(registration=registration, by=by, account=account)
    if account is None:
        return _("Treated as a prospect.")
    return _("Linked to %(account)s.") % {"account": account.name}


def _action_view(action: str) -> Callable[..., HttpResponseBase]:
    @manager_required
    @require_POST
    def view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
        return _decide(request, pk, action)

    view.__name__ = f"registration_{action}_view"
    return view


registration_approve_view = _action_view("approve")
registration_reject_view = _action_view("reject")
registration_won_view = _action_view("won")
registration_lost_view = _action_view("lost")
registration_extend_view = _action_view("extend")
registration_decline_view = _action_view("decline")
registration_link_view = _action_view("link")


@internal_required
def partner_registrations(request: HttpRequest, pk: int) -> HttpResponse:
    """The registrations card of a partner's page (loaded into it)."""
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    registrations = registrations_visible_to(request.user).filter(partner=partner)
    return render(
        request,
        "partners/partials/partner_registrations.html",
        {
            "partner": partner,
            "summary": registration_summary(registrations),
            "latest": registrations.select_related("account").order_by("-submitted_at", "-id")[:10],
            "manager_form": ChannelManagerForm(initial={"manager": partner.channel_manager_id})
            if can_manage(request.user)
            else None,
        },
    )


@manager_required
@require_POST
def partner_channel_manager(request: HttpRequest, pk: int) -> HttpResponse:
    partner = get_object_or_404(partners_visible_to(request.user), pk=pk)
    form = ChannelManagerForm(request.POST)
    if form.is_valid():
        try:
            partner_channel_manager_set(partner=partner, manager=form.cleaned_data["manager"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            manager = form.cleaned_data["manager"]
            messages.success(
                request,
                _("New registrations of %(partner)s go to %(manager)s.")
                % {
                    "partner": partner.name,
                    "manager": manager.get_username() if manager else _("every sales manager"),
                },
            )
    else:
        messages.error(request, _("Choose a sales manager from the list."))
    return redirect("partners:partner_detail", pk=partner.pk)
