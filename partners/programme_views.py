"""The partner programme in the workspace: tiers and the grace period, the tier history with the
figures behind each change, a partner's tier, certifications and targets, and yearly targets of
reps. Figures from the weekly snapshots (scorecards, attainment) are served by `analytics`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, TypedDict, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_stubs_ext import StrOrPromise

from channels.selectors import reps_visible_to
from crm.exports import EXPORT_FORMATS, export_response, labelled
from crm.forms import IdChoiceField, form_add_service_errors, object_id
from crm.idempotency import once_per_form_token
from crm.pagination import list_queries
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.models import Partner
from partners.programme_forms import (
    CertificationForm,
    PartnerTierForm,
    ProgrammeSettingsForm,
    RepTargetForm,
    TargetForm,
    TierForm,
)
from partners.programme_models import REQUIREMENTS, Tier, TierChangeSource
from partners.programme_selectors import (
    certifications_visible_to,
    targets_visible_to,
    tier_changes_visible_to,
    tier_names,
    tiers_visible_to,
)
from partners.programme_services import (
    TierValues,
    certification_add,
    certification_remove,
    partner_tier_set,
    programme_settings,
    programme_settings_set,
    target_delete,
    target_set,
    tier_create,
    tier_delete,
    tier_update,
)
from partners.selectors import partners_visible_to

PAGE_SIZE = 50


class RequirementLine(TypedDict):
    label: StrOrPromise
    kind: str
    minimum: int | Decimal


def _requirement_rows(tier: Tier) -> list[RequirementLine]:
    return [
        {"label": r.label, "kind": r.kind, "minimum": getattr(tier, r.field)}
        for r in REQUIREMENTS
        if getattr(tier, r.field) is not None
    ]


@internal_required
def programme_tiers(request: HttpRequest) -> HttpResponse:
    """The programme's tiers, lowest first, with their requirements, benefits and the partners
    in each today; the grace period, editable by managers."""
    holding = dict(
        Partner.objects.filter(is_active=True)
        .values("tier")
        .annotate(n=Count("id"))
        .values_list("tier", "n")
    )
    tiers = [
        {
            "tier": tier,
            "requirements": _requirement_rows(tier),
            "partners": holding.get(tier.code, 0),
        }
        for tier in tiers_visible_to(request.user).order_by("rank")
    ]
    settings_row = programme_settings()
    return render(
        request,
        "partners/programme/tiers.html",
        {
            "tiers": tiers,
            "grace_weeks": settings_row.downgrade_grace_weeks,
            "settings_form": ProgrammeSettingsForm(
                initial={"downgrade_grace_weeks": settings_row.downgrade_grace_weeks}
            )
            if can_manage(request.user)
            else None,
        },
    )


@manager_required
@require_POST
def programme_settings_view(request: HttpRequest) -> HttpResponse:
    form = ProgrammeSettingsForm(request.POST)
    if form.is_valid():
        programme_settings_set(downgrade_grace_weeks=form.cleaned_data["downgrade_grace_weeks"])
        messages.success(request, _("Grace period saved."))
    else:
        _form_errors(request, form)
    return redirect("programme:tiers")


def _tier_form_page(
    request: HttpRequest, form: TierForm, *, title: str, status: int
) -> HttpResponse:
    return render(
        request, "partners/programme/tier_form.html", {"form": form, "title": title}, status=status
    )


@manager_required
@once_per_form_token
def tier_create_view(request: HttpRequest) -> HttpResponse:
    ranks = tiers_visible_to(request.user).order_by("-rank").values_list("rank", flat=True)
    next_rank = ranks.first()
    form = TierForm(initial={"rank": 0 if next_rank is None else next_rank + 1})
    if request.method == "POST":
        form = TierForm(request.POST)
        if form.is_valid():
            try:
                tier = tier_create(values=form.values())
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("Tier %(tier)s added.") % {"tier": tier.display_name})
                return redirect("programme:tiers")
    status = 400 if form.is_bound else 200
    return _tier_form_page(request, form, title=_("New tier"), status=status)


@manager_required
def tier_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    tier = get_object_or_404(tiers_visible_to(request.user), pk=pk)
    form = TierForm(initial=vars(TierValues.of(tier)))
    if request.method == "POST":
        form = TierForm(request.POST)
        if form.is_valid():
            try:
                tier_update(tier=tier, values=form.values())
            except ValidationError as error:
                form_add_service_errors(form, error)
            else:
                messages.success(request, _("Tier %(tier)s saved.") % {"tier": tier.display_name})
                return redirect("programme:tiers")
    status = 400 if form.is_bound else 200
    title = _("Edit the tier %(tier)s") % {"tier": tier.display_name}
    return _tier_form_page(request, form, title=title, status=status)


@manager_required
@require_POST
def tier_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    tier = get_object_or_404(tiers_visible_to(request.user), pk=pk)
    try:
        tier_delete(tier=tier)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Tier %(tier)s removed.") % {"tier": tier.display_name})
    return redirect("programme:tiers")


@internal_required
def tier_history(request: HttpRequest) -> HttpResponseBase:
    """Every tier change, newest week first, filtered by partner, tier and source; each links
    to the week and figures that caused it."""
    params = {name: request.GET.get(name, "").strip() for name in ("partner", "tier", "source")}
    changes = tier_changes_visible_to(request.user).select_related("partner", "changed_by")
    if (partner_id := object_id(params["partner"])) is not None:
        changes = changes.filter(partner_id=partner_id)
    else:
        params["partner"] = ""
    names = tier_names()
    if params["tier"] in names:
        changes = changes.filter(to_tier=params["tier"]) | changes.filter(from_tier=params["tier"])
    else:
        params["tier"] = ""
    if params["source"] in TierChangeSource.values:
        changes = changes.filter(source=params["source"])
    else:
        params["source"] = ""
    changes = changes.order_by("-week", "-created_at", "-id")
    sources = labelled(TierChangeSource.choices)
    if request.GET.get("format") in EXPORT_FORMATS:
        header = [
            _("Week"),
            _("Figures as of"),
            _("Partner"),
            _("From tier"),
            _("To tier"),
            _("Source"),
            _("Why"),
        ]
        return export_response(
            fmt=request.GET["format"],
            filename="tier-history",
            header=[str(h) for h in header],
            rows=(
                (
                    change.week,
                    change.as_of,
                    change.partner.name,
                    names.get(change.from_tier, change.from_tier),
                    names.get(change.to_tier, change.to_tier),
                    sources.get(change.source, change.source),
                    change.reason,
                )
                for change in changes.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(changes, PAGE_SIZE).get_page(request.GET.get("page"))
    partner = (
        partners_visible_to(request.user).filter(pk=object_id(params["partner"]) or 0).first()
        if params["partner"]
        else None
    )
    return render(
        request,
        "partners/programme/history.html",
        {
            "page": page,
            "params": params,
            "partner": partner,
            "tiers": list(names.items()),
            "sources": TierChangeSource.choices,
            **list_queries(request.GET),
        },
    )


@internal_required
def tier_change_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change = get_object_or_404(
        tier_changes_visible_to(request.user).select_related("partner", "changed_by"), pk=pk
    )
    labels = {r.key: r for r in REQUIREMENTS}
    evidence = change.evidence or {}
    checks = [
        {**check, "label": labels[check["key"]].label, "kind": labels[check["key"]].kind}
        for check in evidence.get("requirements", [])
        if check.get("key") in labels
    ]
    figures = [
        {"label": labels[key].label, "kind": labels[key].kind, "value": value}
        for key, value in (evidence.get("figures") or {}).items()
        if key in labels
    ]
    return render(
        request,
        "partners/programme/change.html",
        {"change": change, "evidence": evidence, "checks": checks, "figures": figures},
    )


def _partner(request: HttpRequest, pk: int) -> Partner:
    return get_object_or_404(partners_visible_to(request.user), pk=pk)


@internal_required
def partner_programme_card(request: HttpRequest, pk: int) -> HttpResponse:
    """The programme card of a partner's page: its tier and latest changes, certifications
    and yearly targets, with the managers' forms."""
    partner = _partner(request, pk)
    year = timezone.localdate().year
    manage = can_manage(request.user)
    return render(
        request,
        "partners/partials/partner_programme.html",
        {
            "partner": partner,
            "changes": tier_changes_visible_to(request.user)
            .filter(partner=partner)
            .select_related("changed_by")
            .order_by("-week", "-created_at", "-id")[:5],
            "certifications": certifications_visible_to(request.user)
            .filter(partner=partner)
            .order_by("-earned_on", "name"),
            "today": timezone.localdate(),
            "targets": targets_visible_to(request.user)
            .filter(partner=partner, year__gte=year - 1)
            .order_by("-year"),
            "tier_form": PartnerTierForm(initial={"tier": partner.tier}) if manage else None,
            "certification_form": CertificationForm() if manage else None,
            "target_form": TargetForm() if manage else None,
        },
    )


def _form_errors(request: HttpRequest, form: BaseForm) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        text = " ".join(map(str, errors))
        messages.error(request, f"{label}: {text}" if label else text)


@manager_required
@require_POST
def partner_tier_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    partner = _partner(request, pk)
    form = PartnerTierForm(request.POST)
    if form.is_valid():
        try:
            partner_tier_set(
                partner=partner,
                tier=form.cleaned_data["tier"],
                by=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("%(partner)s is now in the tier %(tier)s.")
                % {"partner": partner.name, "tier": tier_names().get(partner.tier, partner.tier)},
            )
    else:
        _form_errors(request, form)
    return redirect("partners:partner_detail", pk=partner.pk)


@manager_required
@require_POST
@once_per_form_token
def certification_add_view(request: HttpRequest, pk: int) -> HttpResponse:
    partner = _partner(request, pk)
    form = CertificationForm(request.POST)
    if form.is_valid():
        try:
            certification_add(partner=partner, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Certification added."))
    else:
        _form_errors(request, form)
    return redirect("partners:partner_detail", pk=partner.pk)


@manager_required
@require_POST
def certification_remove_view(request: HttpRequest, pk: int) -> HttpResponse:
    certification = get_object_or_404(certifications_visible_to(request.user), pk=pk)
    partner_id = certification.partner_id
    certification_remove(certification=certification)
    messages.success(request, _("Certification removed."))
    return redirect("partners:partner_detail", pk=partner_id)


@manager_required
@require_POST
def partner_target_view(request: HttpRequest, pk: int) -> HttpResponse:
    partner = _partner(request, pk)
    form = TargetForm(request.POST)
    if form.is_valid():
        try:
            target_set(partner=partner, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, _("Target for %(year)s saved.") % {"year": form.cleaned_data["year"]}
            )
    else:
        _form_errors(request, form)
    return redirect("partners:partner_detail", pk=partner.pk)


@manager_required
@require_POST
def rep_target_view(request: HttpRequest) -> HttpResponse:
    form = RepTargetForm(request.POST)
    rep_field = cast("IdChoiceField[Any]", form.fields["rep"])
    rep_field.queryset = reps_visible_to(request.user).filter(is_active=True)
    if form.is_valid():
        data = dict(form.cleaned_data)
        try:
            target_set(**data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request,
                _("Target of %(rep)s for %(year)s saved.")
                % {"rep": data["rep"].name, "year": data["year"]},
            )
    else:
        _form_errors(request, form)
    return redirect(_targets_page(request))


def _targets_page(request: HttpRequest) -> str:
    year = object_id(request.POST.get("year", ""))
    return "/workspace/targets/" + (f"?{urlencode({'year': year})}" if year else "")


@manager_required
@require_POST
def target_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    target = get_object_or_404(targets_visible_to(request.user), pk=pk)
    partner_id = target.partner_id
    target_delete(target=target)
    messages.success(request, _("Target removed."))
    if partner_id is not None:
        return redirect("partners:partner_detail", pk=partner_id)
    return redirect("/workspace/targets/")
