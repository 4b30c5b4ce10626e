"""Opportunities in the workspace (the pipeline list with filters, the board by step, a deal
with its history and the changes managers make) and in the portal (a partner's own deals).

Every read goes through `partners.selectors.opportunities_visible_to`: a rep sees the deals
they own or whose accounts they work, a partner user only its own organisation's, anything
else is a 404. Sales managers open, move, win, lose, reopen and end deals.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypedDict

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from channels.models import Opportunity, OpportunityEvent, OpportunityStage
from channels.selectors import reps_visible_to, sub_stages_all
from crm.currencies import MissingRate, RateTable
from crm.exports import EXPORT_FORMATS, export_response, yes_no
from crm.filters import filters_for_page, old_bookmark_redirect
from crm.forms import form_add_service_errors
from crm.idempotency import once_per_form_token
from crm.models import ChannelKind
from crm.pagination import list_queries
from crm.roles import (
    AuthenticatedHttpRequest,
    Role,
    can_manage,
    internal_required,
    manager_required,
    role_required,
)
from crm.selectors import rate_table
from partners.filters import OpportunityFilter
from partners.opportunity_forms import (
    EndForm,
    LoseForm,
    MoveForm,
    OpportunityForm,
    ReopenForm,
    WinForm,
)
from partners.opportunity_services import (
    OpportunityOwner,
    opportunity_change,
    opportunity_create,
    opportunity_lose,
    opportunity_reopen,
    opportunity_win,
    subscription_end,
)
from partners.selectors import accounts_visible_to, opportunities_visible_to, partners_visible_to

PAGE_SIZE = 50
PORTAL_PAGE_SIZE = 25
# Cards shown per board column, the largest first; the column's count and total cover all.
BOARD_CARDS = 20
CENTS = Decimal("0.01")
portal_required = role_required(Role.PARTNER_USER)


def _deals(request: HttpRequest) -> QuerySet[Opportunity]:
    return opportunities_visible_to(request.user).select_related(
        "account", "rep", "partner", "sub_stage"
    )


def _filtered(
    request: HttpRequest, deals: QuerySet[Opportunity]
) -> tuple[QuerySet[Opportunity], dict[str, str], OpportunityFilter]:
    """The list's deals for its GET parameters, read through `OpportunityFilter` as the API
    reads them. The list opens on the open deals (`stage=` shows every stage)."""
    filters, params = filters_for_page(
        OpportunityFilter, request, queryset=deals, defaults={"stage": OpportunityStage.OPEN}
    )
    return filters.qs, params, filters


def _old_bookmark(request: HttpRequest) -> HttpResponseRedirect | None:
    """Links written before the list's FilterSet: ?recurring=yes/no, and a step by its id
    (`?sub_stage=3`) where it is now its code."""
    step = request.GET.get("sub_stage", "").strip()
    steps = (
        {str(pk): code for pk, code in sub_stages_all().values_list("pk", "code")}
        if step.isdigit()
        else {}
    )
    return old_bookmark_redirect(
        request,
        renamed={},
        values={"recurring": {"yes": "true", "no": "false"}, "sub_stage": steps},
    )


def _export(fmt: str, deals: QuerySet[Opportunity]) -> HttpResponseBase:
    header = [
        _("External id"),
        _("Name"),
        _("Account"),
        _("Sourcing channel"),
        _("Owner"),
        _("Stage"),
        _("Step"),
        _("Amount"),
        _("Currency"),
        _("Recurring"),
        _("Opened on"),
        _("Expected close"),
        _("Closed on"),
        _("Ends on"),
    ]
    rows = (
        (
            deal.external_id,
            deal.name,
            deal.account.external_id,
            deal.channel,
            deal.owner_label,
            deal.stage,
            deal.sub_stage.code,
            deal.amount,
            deal.currency,
            yes_no(deal.recurring),
            deal.opened_on,
            deal.expected_close_on,
            deal.closed_on,
            deal.ends_on,
        )
        for deal in deals.iterator(2000)
    )
    return export_response(
        fmt=fmt, filename="opportunities", header=[str(h) for h in header], rows=rows
    )


@internal_required
def opportunity_list(request: HttpRequest) -> HttpResponseBase:
    if old := _old_bookmark(request):
        return old
    deals, params, filters = _filtered(request, _deals(request))
    if request.GET.get("format") in EXPORT_FORMATS:
        return _export(request.GET["format"], deals)
    page = Paginator(deals, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "partners/opportunity_list.html",
        {
            "page": page,
            "params": params,
            "filters": filters,
            "stages": OpportunityStage.choices,
            "channels": ChannelKind.choices,
            "sub_stages": sub_stages_all(),
            "partners": partners_visible_to(request.user).order_by("name").only("id", "name"),
            "reps": reps_visible_to(request.user).order_by("name").only("id", "name"),
            "can_manage": can_manage(request.user),
            **list_queries(request.GET),
        },
    )


def _in_reporting(
    deals: list[tuple[Decimal, str, bool]], day: date, rates: RateTable
) -> tuple[Decimal, list[str]]:
    """The deals' amounts in the reporting currency at the rates valid on `day` (a recurring
    deal at 12 monthly fees, docs/metrics.md rule 11), and the currencies without a rate."""
    total, missing = Decimal(0), []
    for amount, currency, recurring in deals:
        try:
            rate = rates.rate_on(currency, day)
        except MissingRate:
            missing.append(currency)
            continue
        total += amount * (12 if recurring else 1) * rate
    return total.quantize(CENTS, ROUND_HALF_UP), sorted(set(missing))


@internal_required
def opportunity_board(request: HttpRequest) -> HttpResponse:
    open_deals = _deals(request).filter(stage=OpportunityStage.OPEN)
    channel = request.GET.get("channel", "")
    if channel in ChannelKind.values:
        open_deals = open_deals.filter(channel=channel)
    else:
        channel = ""
    counts = dict(open_deals.values_list("sub_stage").annotate(n=Count("id")).order_by())
    today = timezone.localdate()
    columns, missing = [], set()
    rates = rate_table()
    for sub_stage in sub_stages_all():
        in_step = open_deals.filter(sub_stage=sub_stage)
        total, lacking = _in_reporting(
            list(in_step.values_list("amount", "currency", "recurring")), today, rates
        )
        missing.update(lacking)
        columns.append(
            {
                "sub_stage": sub_stage,
                "count": counts.get(sub_stage.pk, 0),
                "total": total,
                "weighted": (total * sub_stage.probability / 100).quantize(CENTS, ROUND_HALF_UP),
                "cards": list(in_step.order_by("-amount", "id")[:BOARD_CARDS]),
            }
        )
    return render(
        request,
        "partners/opportunity_board.html",
        {
            "columns": columns,
            "channel": channel,
            "channels": ChannelKind.choices,
            "missing_rates": sorted(missing),
            "reporting_currency": settings.REPORTING_CURRENCY,
            "today": today,
        },
    )


ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _value_labels() -> dict[str, dict[str, str]]:
    """How a recorded change's values read in the reader's language: the history keeps them
    as text (stage and channel codes, yes/no, a step as it was named then)."""
    steps = {}
    for step in sub_stages_all():
        for name in {step.name, step.name_zh} - {""}:
            steps[f"{name} ({step.probability:g} %)"] = str(step)
    return {
        "stage": {value: str(label) for value, label in OpportunityStage.choices},
        "channel": {value: str(label) for value, label in ChannelKind.choices},
        "recurring": {"yes": _("Yes"), "no": _("No")},
        "sub_stage": steps,
    }


class EventShown(TypedDict):
    event: OpportunityEvent
    changes: list[tuple[str, list[str]]]


def _events(deal: Opportunity) -> list[EventShown]:
    labels = _value_labels()

    def shown(field: str, values: list[str]) -> list[str]:
        # A day is kept as ISO text and read in the reader's format.
        return [
            date_format(date.fromisoformat(value))
            if field.endswith("_on") and ISO_DAY.fullmatch(value)
            else labels.get(field, {}).get(value, value)
            for value in values
        ]

    return [
        {
            "event": event,
            "changes": [
                (field, shown(field, values)) for field, values in sorted(event.changes.items())
            ],
        }
        for event in deal.events.select_related("by").order_by("created_at", "id")
    ]


ACTION_FORMS: dict[str, Callable[..., Form]] = {
    "move": MoveForm,
    "win": WinForm,
    "lose": LoseForm,
    "reopen": ReopenForm,
    "end": EndForm,
}


def _action_forms(bound: tuple[str, Form] | None, deal: Opportunity) -> dict[str, Form]:
    today = timezone.localdate()
    initial = {
        "move": {"sub_stage": deal.sub_stage_id},
        "win": {"closed_on": today},
        "lose": {"closed_on": today},
        "end": {"ends_on": deal.ends_on or today},
    }
    forms = {}
    for action, form_class in ACTION_FORMS.items():
        extra = {"sub_stages": sub_stages_all()} if action == "move" else {}
        forms[action] = form_class(initial=initial.get(action), prefix=action, **extra)
    if bound:
        forms[bound[0]] = bound[1]
    return forms


def _render_detail(
    request: HttpRequest,
    deal: Opportunity,
    *,
    bound: tuple[str, Form] | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "partners/opportunity_detail.html",
        {
            "deal": deal,
            "events": _events(deal),
            "can_manage": can_manage(request.user),
            "forms": _action_forms(bound, deal),
        },
        status=status,
    )


@internal_required
def opportunity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _render_detail(request, get_object_or_404(_deals(request), pk=pk))


def _apply(
    request: AuthenticatedHttpRequest, deal: Opportunity, action: str, data: dict[str, Any]
) -> str:
    by = request.user
    if action == "move":
        opportunity_change(opportunity=deal, by=by, sub_stage=data["sub_stage"])
        return _("Moved to %(step)s.") % {"step": data["sub_stage"].display_name}
    if action == "win":
        opportunity_win(
            opportunity=deal,
            closed_on=data["closed_on"],
            amount=data["amount"],
            note=data["note"],
            by=by,
        )
        return _("Recorded as won.")
    if action == "lose":
        opportunity_lose(
            opportunity=deal, closed_on=data["closed_on"], reason=data["reason"], by=by
        )
        return _("Recorded as lost.")
    if action == "reopen":
        opportunity_reopen(opportunity=deal, note=data["note"], by=by)
        return _("Reopened.")
    subscription_end(opportunity=deal, ends_on=data["ends_on"], by=by)
    return _("Subscription end saved.")


@manager_required
@require_POST
@once_per_form_token
def opportunity_action(request: AuthenticatedHttpRequest, pk: int, action: str) -> HttpResponse:
    deal = get_object_or_404(_deals(request), pk=pk)
    if action not in ACTION_FORMS:
        return redirect("opportunities:detail", pk=deal.pk)
    extra = {"sub_stages": sub_stages_all()} if action == "move" else {}
    form = ACTION_FORMS[action](request.POST, prefix=action, **extra)
    if form.is_valid():
        try:
            done = _apply(request, deal, action, form.cleaned_data)
        except ValidationError as error:
            form_add_service_errors(form, error)
        else:
            messages.success(request, done)
            return redirect("opportunities:detail", pk=deal.pk)
    deal.refresh_from_db()
    return _render_detail(request, deal, bound=(action, form), status=400)


@manager_required
@once_per_form_token
def opportunity_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = OpportunityForm(
        request.POST or None,
        accounts=accounts_visible_to(request.user),
        reps=reps_visible_to(request.user),
        partners=partners_visible_to(request.user).filter(
            channel_kind__in=[ChannelKind.DISTRIBUTION, ChannelKind.PARTNER]
        ),
        sub_stages=sub_stages_all(),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                deal = opportunity_create(
                    account=data["account"],
                    owner=OpportunityOwner(
                        channel=data["channel"],
                        rep=data["rep"],
                        partner=data["partner"],
                        online_source=data["online_source"],
                    ),
                    name=data["name"],
                    amount=data["amount"],
                    currency=data["currency"],
                    recurring=data["recurring"],
                    opened_on=data["opened_on"],
                    expected_close_on=data["expected_close_on"],
                    sub_stage=data["sub_stage"],
                    by=request.user,
                )
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(
                    request, _("Opportunity %(id)s opened.") % {"id": deal.external_id}
                )
                return redirect("opportunities:detail", pk=deal.pk)
    return render(request, "partners/opportunity_form.html", {"form": form}, status=status)


# -- Portal --------------------------------------------------------------------------------


@portal_required
def portal_opportunity_list(request: HttpRequest) -> HttpResponse:
    deals = _deals(request)
    stage = request.GET.get("stage", "")
    if stage in OpportunityStage.values:
        deals = deals.filter(stage=stage)
    else:
        stage = ""
    page = Paginator(deals.order_by("-opened_on", "-id"), PORTAL_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "partners/portal/opportunity_list.html",
        {
            "page": page,
            "stage": stage,
            "stages": OpportunityStage.choices,
            "querystring": f"stage={stage}" if stage else "",
        },
    )


@portal_required
def portal_opportunity_detail(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_object_or_404(_deals(request), pk=pk)
    # The partner sees when its deal moved, not who inside the company moved it.
    events = deal.events.order_by("created_at", "id").only("created_at", "kind", "changes")
    return render(
        request,
        "partners/portal/opportunity_detail.html",
        {"deal": deal, "events": events},
    )
