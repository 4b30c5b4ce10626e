"""Forms of the opportunity pages: open a deal, move it through the pipeline, win, lose,
reopen, and end a subscription. Choices come from what the user may see (the views pass them)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from channels.models import OpportunitySubStage, SalesRep
from crm.forms import DateInput, IdChoiceField, StyledFormMixin
from crm.models import Account, ChannelKind
from partners.models import Partner


class OpportunityForm(StyledFormMixin, forms.Form):
    account = forms.CharField(
        label=_("Account"), max_length=64, help_text=_("The account's external id.")
    )
    name = forms.CharField(label=_("Name"), max_length=200, required=False)
    channel = forms.ChoiceField(label=_("Sourcing channel"), choices=ChannelKind.choices)
    rep = IdChoiceField(
        label=_("Sales rep (direct)"), queryset=SalesRep.objects.none(), required=False
    )
    partner = IdChoiceField(
        label=_("Distributor or partner"), queryset=Partner.objects.none(), required=False
    )
    online_source = forms.CharField(
        label=_("Online source"), max_length=100, required=False, help_text=_("e.g. web-signup")
    )
    sub_stage = IdChoiceField(label=_("Step"), queryset=OpportunitySubStage.objects.none())
    amount = forms.DecimalField(
        label=_("Amount"), min_value=Decimal(0), max_digits=14, decimal_places=2
    )
    currency = forms.CharField(label=_("Currency"), max_length=3, min_length=3)
    recurring = forms.BooleanField(
        label=_("Recurring: the amount is a monthly fee (a subscription)"), required=False
    )
    opened_on = forms.DateField(label=_("Opened on"), widget=DateInput())
    expected_close_on = forms.DateField(
        label=_("Expected close"), widget=DateInput(), required=False
    )

    def __init__(
        self,
        *args: Any,
        accounts: QuerySet[Account],
        reps: QuerySet[SalesRep],
        partners: QuerySet[Partner],
        sub_stages: QuerySet[OpportunitySubStage],
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("initial", {}).setdefault("currency", settings.REPORTING_CURRENCY)
        super().__init__(*args, **kwargs)
        self.accounts = accounts
        self.fields["rep"].queryset = reps.filter(is_active=True).order_by("name")  # type: ignore[attr-defined]
        self.fields["partner"].queryset = partners.order_by("name")  # type: ignore[attr-defined]
        self.fields["sub_stage"].queryset = sub_stages  # type: ignore[attr-defined]
        self.fields["sub_stage"].initial = sub_stages.values_list("pk", flat=True).first()

    def clean_account(self) -> Account:
        external_id = self.cleaned_data["account"].strip()
        account = self.accounts.filter(external_id=external_id).first()
        if account is None:
            raise forms.ValidationError(_("No account with this external id."))
        return account

    def clean_currency(self) -> str:
        return str(self.cleaned_data["currency"]).strip().upper()


class MoveForm(StyledFormMixin, forms.Form):
    sub_stage = IdChoiceField(label=_("Step"), queryset=OpportunitySubStage.objects.none())

    def __init__(self, *args: Any, sub_stages: QuerySet[OpportunitySubStage], **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["sub_stage"].queryset = sub_stages  # type: ignore[attr-defined]


class WinForm(StyledFormMixin, forms.Form):
    closed_on = forms.DateField(label=_("Won on"), widget=DateInput())
    amount = forms.DecimalField(
        label=_("Final amount"),
        min_value=Decimal(0),
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text=_("Leave empty to keep the deal's amount."),
    )
    note = forms.CharField(label=_("Note"), max_length=2000, required=False)


class LoseForm(StyledFormMixin, forms.Form):
    closed_on = forms.DateField(label=_("Lost on"), widget=DateInput())
    reason = forms.CharField(
        label=_("Why it was lost"),
        max_length=2000,
        required=False,
        widget=forms.Textarea({"rows": 2}),
    )


class ReopenForm(StyledFormMixin, forms.Form):
    note = forms.CharField(label=_("Why reopen"), max_length=2000, required=False)


class EndForm(StyledFormMixin, forms.Form):
    ends_on = forms.DateField(
        label=_("First day it no longer runs"),
        widget=DateInput(),
        required=False,
        help_text=_("Leave empty for a subscription that runs again."),
    )
