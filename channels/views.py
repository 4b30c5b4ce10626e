from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from channels.selectors import internal_accounts_visible_to, reps_visible_to
from crm.models import SizeBand
from crm.roles import Role, internal_required, role_required
from crm.selectors import AccountFilter, accounts_filtered, regions_all, verticals_all

PAGE_SIZE = 50


def _account_page(request: HttpRequest, *, title: str) -> HttpResponse:
    account_filter = AccountFilter.from_query(request.GET)
    accounts = accounts_filtered(internal_accounts_visible_to(request.user), account_filter)
    accounts = accounts.select_related("region", "vertical").order_by("name", "id")
    page = Paginator(accounts, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "channels/account_list.html",
        {
            "title": title,
            "page": page,
            "filter": account_filter,
            "regions": regions_all(),
            "verticals": verticals_all(),
            "size_bands": SizeBand.choices,
            "querystring": query.urlencode(),
        },
    )


@internal_required
def account_list(request: HttpRequest) -> HttpResponse:
    return _account_page(request, title="Accounts")


@role_required(Role.SALES_REP)
def my_accounts(request: HttpRequest) -> HttpResponse:
    return _account_page(request, title="My accounts")


@internal_required
def rep_list(request: HttpRequest) -> HttpResponse:
    reps = reps_visible_to(request.user).prefetch_related("regions").order_by("name")
    page = Paginator(reps, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "channels/rep_list.html", {"page": page})
