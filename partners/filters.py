"""The filters (and orders) of every list that both a page and the API show, defined once as
django-filter FilterSets (see `crm/filters.py`): the API names each as its `filterset_class`, the
page reads its GET parameters through the same one. A value a FilterSet refuses is a 400 with
the field's error in the API and an error beside the filter on the page."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

import django_filters
from django.contrib.auth.models import AnonymousUser
from django.db.models import Model, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels.models import Opportunity, OpportunityStage
from crm.filters import IdFilter, SortFilter, TrueFalseFilter
from crm.forms import object_id
from crm.models import Account, ChannelKind, SizeBand
from crm.roles import is_internal
from crm.selectors import AccountFilter
from partners.models import (
    Agreement,
    AgreementStatus,
    AgreementType,
    Feedback,
    FeedbackCategory,
    FeedbackStatus,
    Partner,
    PartnerKind,
    PartnerType,
)
from partners.registration_models import (
    ConflictCode,
    DealRegistration,
    ExtensionStatus,
    RegistrationStatus,
)
from partners.registration_selectors import due_soon_before, overdue_before
from partners.selectors import (
    ACCOUNT_COVERAGE_CHOICES,
    AccountListFilter,
    Grants,
    accounts_listed,
    feedback_awaiting_answer,
)


class ListFilterSet(django_filters.FilterSet):
    """A FilterSet whose `sort` (a `SortFilter`) orders the rows by its default when the value
    is missing or refused."""

    def filter_queryset(self, queryset: QuerySet[Model]) -> QuerySet[Model]:
        queryset = super().filter_queryset(queryset)
        sort = self.filters.get("sort")
        if isinstance(sort, SortFilter) and "sort" not in self.form.cleaned_data:
            queryset = sort.filter(queryset, "")
        return queryset


class OfPartnerFilterSet(ListFilterSet):
    """`?partner=ID` within what the caller sees: another partner's id finds nothing, exactly
    like an id that does not exist (a partner user learns nothing about which ids exist)."""

    partner = IdFilter(label=_("Partner"), help_text="A partner id.")


# Partners ---------------------------------------------------------------------------------------


class PartnerFilter(ListFilterSet):
    """The partner and distributor lists and `/api/v1/partners/`."""

    q = django_filters.CharFilter(
        label=_("Search"),
        method="by_text",
        max_length=100,
        help_text="Text in the name, or the external id.",
    )
    channel_kind = django_filters.ChoiceFilter(
        label=_("Kind"),
        choices=PartnerKind.choices,
        help_text="distribution (distributors) or partner.",
    )
    partner_type = django_filters.ChoiceFilter(label=_("Type"), choices=PartnerType.choices)
    tier = django_filters.CharFilter(label=_("Tier"), help_text="A tier code of the programme.")
    is_active = TrueFalseFilter(
        label=_("Active"),
    )
    sort = SortFilter(
        {
            "name": ("name", "id"),
            "-name": ("-name", "-id"),
            "tier": ("tier", "name", "id"),
            "-created_at": ("-created_at", "-id"),
        },
        default="name",
    )

    class Meta:
        model = Partner
        fields = ["q", "channel_kind", "partner_type", "tier", "is_active", "country", "sort"]

    def by_text(self, queryset: QuerySet[Partner], name: str, value: str) -> QuerySet[Partner]:
        return queryset.filter(Q(name__icontains=value) | Q(external_id=value[:64]))


# Agreements -------------------------------------------------------------------------------------


class AgreementFilter(OfPartnerFilterSet):
    """The agreement list (`/workspace/agreements/`) and `/api/v1/agreements/`."""

    q = django_filters.CharFilter(
        label=_("Search"),
        method="by_text",
        max_length=100,
        help_text="Text in the agreement's external id or the partner's name.",
    )
    status = django_filters.ChoiceFilter(label=_("Status"), choices=AgreementStatus.choices)
    agreement_type = django_filters.ChoiceFilter(label=_("Type"), choices=AgreementType.choices)
    channel_kind = django_filters.ChoiceFilter(
        label=_("Kind"),
        field_name="partner__channel_kind",
        choices=PartnerKind.choices,
        help_text="The partner's kind: distribution (distributors) or partner.",
    )
    ends_after = django_filters.DateFilter(
        label=_("Ends on or after"), field_name="end_date", lookup_expr="gte"
    )
    ends_before = django_filters.DateFilter(
        label=_("Ends on or before"), field_name="end_date", lookup_expr="lte"
    )
    exclusive = TrueFalseFilter(label=_("Exclusive"))
    sort = SortFilter(
        {
            "-start_date": ("-start_date", "id"),
            "start_date": ("start_date", "id"),
            "end_date": ("end_date", "id"),
            "-end_date": ("-end_date", "id"),
            "partner": ("partner__name", "id"),
        },
        default="-start_date",
    )

    class Meta:
        model = Agreement
        fields = [
            "partner",
            "q",
            "status",
            "agreement_type",
            "channel_kind",
            "ends_after",
            "ends_before",
            "exclusive",
            "sort",
        ]

    def by_text(self, queryset: QuerySet[Agreement], name: str, value: str) -> QuerySet[Agreement]:
        return queryset.filter(
            Q(external_id__icontains=value[:64]) | Q(partner__name__icontains=value)
        )


# Accounts ---------------------------------------------------------------------------------------

# Filters that tell how other channels cover an account: internal users only (a partner user's
# token would otherwise learn of coverage that is not theirs).
INTERNAL_ACCOUNT_FILTERS = ("coverage", "rep", "as_of")

# The account list's orders, for the page and the API alike. Each ends in a unique column, so
# pages never shuffle; each is served by an index on exactly its columns (`account_name_idx`,
# the external id's unique index, `account_entered_idx`, and the filtered lists' covering
# indexes on (..., name, id)). The API's cursor keeps its place on the first column and counts
# ties on it by offset (`crm.api.pagination.IdCursorPagination`).
ACCOUNT_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "external_id": ("external_id",),
    "-external_id": ("-external_id",),
    "entered_on": ("entered_on", "id"),
    "-entered_on": ("-entered_on", "-id"),
}


class AccountListFilterSet(django_filters.FilterSet):
    """The account lists (`/workspace/accounts/`, a rep's own) and `/api/v1/accounts/`. The
    list's filters make an `AccountListFilter`, which `partners.selectors.accounts_listed`
    applies to the caller's accounts. `sort` orders both (`ACCOUNT_SORTS`): the page by name
    when none is asked, the API by id (its cursor's order before sorts were offered)."""

    q = django_filters.CharFilter(
        label=_("Search"), help_text="An external id, or text in the name."
    )
    region = django_filters.CharFilter(label=_("Region"), help_text="Region code.")
    vertical = django_filters.CharFilter(label=_("Vertical"), help_text="Vertical code.")
    size_band = django_filters.ChoiceFilter(label=_("Size band"), choices=SizeBand.choices)
    coverage = django_filters.ChoiceFilter(
        label=_("Coverage"),
        choices=[(choice, choice) for choice in ACCOUNT_COVERAGE_CHOICES],
        help_text='"none" (white space), "any", a channel kind (covered, counted as the metrics '
        'count it) or "outside" (assigned outside an agreement in force). Internal users only.',
    )
    partner = django_filters.CharFilter(
        label=_("Partner"), help_text="In the market and assigned to this partner id."
    )
    rep = django_filters.CharFilter(
        label=_("Sales rep"),
        help_text="In the market and assigned to this sales rep id. Internal users only.",
    )
    as_of = django_filters.DateFilter(
        label=_("As of"),
        help_text="The past day the filters are evaluated on (default today). Internal users only.",
    )
    external_id = django_filters.CharFilter(
        label=_("External id"),
    )
    converted = TrueFalseFilter(
        label=_("Converted"), field_name="converted_on", lookup_expr="isnull", exclude=True
    )
    sort = SortFilter(
        ACCOUNT_SORTS,
        default="name",
        help_text="name, external_id or entered_on, descending with a leading -; the cursor "
        "follows it. Without it the API lists by id.",
    )

    class Meta:
        model = Account
        fields = [
            "q",
            "region",
            "vertical",
            "size_band",
            "coverage",
            "partner",
            "rep",
            "as_of",
            "external_id",
            "converted",
            "sort",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.request is not None and not is_internal(self.request.user):
            for name in INTERNAL_ACCOUNT_FILTERS:
                self.filters.pop(name)
        self._grants: dict[date, Grants] = {}

    def grants_on(self, day: date) -> Grants:
        """The agreements in force on `day`, read once for the coverage filter and for the
        page that marks its rows' coverage."""
        if day not in self._grants:
            self._grants[day] = Grants.on(day)
        return self._grants[day]

    def account_filter(self, *, today: date) -> AccountListFilter:
        """The list's filters as the selectors take them (blank for a refused value)."""
        data: dict[str, Any] = {}
        if self.is_bound:
            self.form.is_valid()  # the valid fields' values, whatever the others hold
            data = self.form.cleaned_data
        as_of = data.get("as_of")
        ids = {name: (data.get(name) or "").strip() for name in ("partner", "rep")}
        return AccountListFilter(
            segment=AccountFilter(
                q=(data.get("q") or "").strip()[:100],
                region=(data.get("region") or "").strip(),
                vertical=(data.get("vertical") or "").strip(),
                size_band=data.get("size_band") or "",
            ),
            coverage=data.get("coverage") or "",
            # An id that is no number names no partner (or rep): the list then shows nothing.
            partner=object_id(ids["partner"]) or (0 if ids["partner"] else None),
            rep=object_id(ids["rep"]) or (0 if ids["rep"] else None),
            as_of=as_of if as_of is not None and as_of < today else None,
        )

    def filter_queryset(self, queryset: QuerySet[Account]) -> QuerySet[Account]:
        today = timezone.localdate()
        account_filter = self.account_filter(today=today)
        queryset = accounts_listed(
            self.request.user if self.request is not None else AnonymousUser(),
            account_filter,
            today=today,
            accounts=queryset,
            grants=self.grants_on(account_filter.day(today)) if account_filter.coverage else None,
        )
        data = self.form.cleaned_data
        for name in ("external_id", "converted"):
            queryset = self.filters[name].filter(queryset, data.get(name))
        if data.get("sort"):
            queryset = self.filters["sort"].filter(queryset, data["sort"])
        return queryset

    def sort_order(self) -> tuple[str, ...]:
        """The `order_by` fields of the asked sort; the default's for none or a refused one."""
        sort = cast(SortFilter, self.filters["sort"])
        self.form.is_valid()  # the valid fields' values, whatever the others hold
        asked = self.form.cleaned_data.get("sort") if self.is_bound else None
        return sort.orders[asked or sort.default]


# Feedback ---------------------------------------------------------------------------------------

FEEDBACK_OPEN = "open"
FEEDBACK_ALL = "all"
FEEDBACK_CLOSED = (FeedbackStatus.RESOLVED, FeedbackStatus.CLOSED)


class FeedbackFilter(OfPartnerFilterSet):
    """The feedback inbox and `/api/v1/feedback/`. The inbox opens on `status=open`; the API
    lists every status unless asked."""

    status = django_filters.ChoiceFilter(
        label=_("Status"),
        method="by_status",
        choices=[
            (FEEDBACK_OPEN, _("Open (not resolved or closed)")),
            (FEEDBACK_ALL, _("All, closed included")),
            *FeedbackStatus.choices,
        ],
        help_text='A status, "open" (neither resolved nor closed) or "all".',
    )
    category = django_filters.ChoiceFilter(label=_("Category"), choices=FeedbackCategory.choices)
    satisfaction = django_filters.TypedChoiceFilter(
        label=_("Rating"),
        choices=[(str(n), str(n)) for n in range(1, 6)],
        coerce=int,
        help_text="A satisfaction score, 1 to 5.",
    )
    assignee = django_filters.ChoiceFilter(
        label=_("Assigned"),
        method="by_assignee",
        choices=[("me", _("To me")), ("none", _("Nobody"))],
        help_text='"me" (assigned to the caller) or "none" (not assigned).',
    )
    waiting = django_filters.ChoiceFilter(
        label=_("Answered"),
        method="awaiting",
        choices=[("answer", _("Waiting for our first answer"))],
        help_text='"answer": the partner wrote last and nobody has answered yet.',
    )
    q = django_filters.CharFilter(
        label=_("Subject"),
        field_name="subject",
        lookup_expr="icontains",
        max_length=100,
        help_text="Subject text.",
    )
    sort = SortFilter(
        {
            "-created_at": ("-created_at", "-id"),
            "created_at": ("created_at", "id"),
            "satisfaction": ("satisfaction", "-created_at", "-id"),
            "-satisfaction": ("-satisfaction", "-created_at", "-id"),
        },
        default="-created_at",
    )

    class Meta:
        model = Feedback
        fields = [
            "partner",
            "status",
            "category",
            "satisfaction",
            "assignee",
            "waiting",
            "q",
            "sort",
        ]

    def by_status(self, queryset: QuerySet[Feedback], name: str, value: str) -> QuerySet[Feedback]:
        if value == FEEDBACK_OPEN:
            return queryset.exclude(status__in=FEEDBACK_CLOSED)
        if value == FEEDBACK_ALL:
            return queryset
        return queryset.filter(status=value)

    def by_assignee(
        self, queryset: QuerySet[Feedback], name: str, value: str
    ) -> QuerySet[Feedback]:
        if value == "me":
            return queryset.filter(assignee=self.request.user if self.request else None)
        return queryset.filter(assignee__isnull=True)

    def awaiting(self, queryset: QuerySet[Feedback], name: str, value: str) -> QuerySet[Feedback]:
        user = self.request.user if self.request else AnonymousUser()
        return queryset.filter(pk__in=feedback_awaiting_answer(user).values("pk"))


# Deal registrations -----------------------------------------------------------------------------

REGISTRATIONS_OPEN = "open"
# The decision filter: overdue, or overdue or due by the next business day (the manager's home
# counts those); each gives the first submission day not in it.
DEADLINE_FILTERS = {"yes": overdue_before, "soon": due_soon_before}


class DealRegistrationFilter(OfPartnerFilterSet):
    """The registration queue and `/api/v1/registrations/`. The queue opens on the submitted
    ones; the API lists every status unless asked."""

    status = django_filters.ChoiceFilter(
        label=_("Status"),
        method="by_status",
        choices=[
            (REGISTRATIONS_OPEN, _("Open (submitted or approved)")),
            *RegistrationStatus.choices,
        ],
        help_text='A status, or "open" (submitted or approved).',
    )
    account = IdFilter(label=_("Account"), help_text="An account id.")
    conflict = django_filters.ChoiceFilter(
        label=_("Conflict"),
        method="by_conflict",
        choices=[("any", _("Any conflict")), *ConflictCode.choices],
        help_text='Registrations whose last computed conflicts include this code; "any": '
        "those that need a review.",
    )
    needs_review = TrueFalseFilter(
        label=_("Needs review"),
    )
    overdue = django_filters.ChoiceFilter(
        label=_("Decision"),
        method="by_deadline",
        choices=[("yes", _("Overdue")), ("soon", _("Overdue or due by the next business day"))],
        help_text='Submitted and waiting for a decision: "yes" past the deadline, "soon" past '
        "it or due by the next business day.",
    )
    extension = django_filters.ChoiceFilter(
        label=_("Extension"),
        method="by_extension",
        choices=[(ExtensionStatus.REQUESTED.value, _("Requested"))],
        help_text='"requested": an extension of protection waits for a decision.',
    )
    q = django_filters.CharFilter(
        label=_("Search"),
        method="by_text",
        max_length=100,
        help_text="Text in the company name, or the id.",
    )
    sort = SortFilter(
        {
            "submitted_at": ("submitted_at", "id"),
            "-submitted_at": ("-submitted_at", "-id"),
            "protected_until": ("protected_until", "id"),
            "company_name": ("company_name", "id"),
        },
        default="submitted_at",
    )

    class Meta:
        model = DealRegistration
        fields = [
            "status",
            "partner",
            "account",
            "needs_review",
            "conflict",
            "overdue",
            "extension",
            "q",
            "sort",
        ]

    def by_status(
        self, queryset: QuerySet[DealRegistration], name: str, value: str
    ) -> QuerySet[DealRegistration]:
        if value == REGISTRATIONS_OPEN:
            return queryset.filter(
                status__in=[RegistrationStatus.SUBMITTED, RegistrationStatus.APPROVED]
            )
        return queryset.filter(status=value)

    def by_conflict(
        self, queryset: QuerySet[DealRegistration], name: str, value: str
    ) -> QuerySet[DealRegistration]:
        if value == "any":
            return queryset.filter(needs_review=True)
        return queryset.filter(conflict_codes_text__contains=f" {value} ")

    def by_deadline(
        self, queryset: QuerySet[DealRegistration], name: str, value: str
    ) -> QuerySet[DealRegistration]:
        cutoff = DEADLINE_FILTERS[value](timezone.localdate())
        return queryset.filter(status=RegistrationStatus.SUBMITTED, submitted_at__date__lt=cutoff)

    def by_extension(
        self, queryset: QuerySet[DealRegistration], name: str, value: str
    ) -> QuerySet[DealRegistration]:
        return queryset.filter(extension_status=value)

    def by_text(
        self, queryset: QuerySet[DealRegistration], name: str, value: str
    ) -> QuerySet[DealRegistration]:
        return queryset.filter(Q(company_name__icontains=value) | Q(external_id=value.upper()))


# Opportunities ----------------------------------------------------------------------------------


class OpportunityFilter(OfPartnerFilterSet):
    """The opportunity list (`/workspace/opportunities/`) and `/api/v1/opportunities/`. The page
    opens on the open deals; the API lists every stage unless asked."""

    stage = django_filters.ChoiceFilter(label=_("Stage"), choices=OpportunityStage.choices)
    channel = django_filters.ChoiceFilter(label=_("Sourcing channel"), choices=ChannelKind.choices)
    sub_stage = django_filters.CharFilter(
        label=_("Step"), field_name="sub_stage__code", help_text="A sub-stage code."
    )
    rep = IdFilter(label=_("Rep"), help_text="A sales rep id.")
    recurring = TrueFalseFilter(
        label=_("Recurring"),
    )
    account = django_filters.CharFilter(
        label=_("Account"), field_name="account__external_id", help_text="An account's external id."
    )
    closed_from = django_filters.DateFilter(
        label=_("Closed from"), field_name="closed_on", lookup_expr="gte"
    )
    closed_to = django_filters.DateFilter(
        label=_("Closed to"), field_name="closed_on", lookup_expr="lte"
    )
    q = django_filters.CharFilter(
        label=_("Search"),
        method="by_text",
        max_length=100,
        help_text="Text in the deal's or the account's name, or either's external id.",
    )
    sort = SortFilter(
        {
            "-opened_on": ("-opened_on", "-id"),
            "expected_close_on": ("expected_close_on", "id"),
            "-amount": ("-amount", "-id"),
            "-closed_on": ("-closed_on", "-id"),
        },
        default="-opened_on",
    )

    class Meta:
        model = Opportunity
        fields = [
            "stage",
            "channel",
            "sub_stage",
            "partner",
            "rep",
            "recurring",
            "account",
            "closed_from",
            "closed_to",
            "q",
            "sort",
        ]

    def by_text(
        self, queryset: QuerySet[Opportunity], name: str, value: str
    ) -> QuerySet[Opportunity]:
        return queryset.filter(
            Q(name__icontains=value)
            | Q(account__name__icontains=value)
            | Q(external_id=value)
            | Q(account__external_id=value)
        )
