"""Forms of deal registration: the partner's registration (portal) and the managers' decisions
and settings (workspace), and webhook endpoints."""

from __future__ import annotations

from typing import Any, TypedDict, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from crm.forms import DateInput, IdChoiceField, StyledFormMixin
from crm.models import Region, SizeBand, Vertical
from crm.roles import Role
from partners.registration_services import (
    MAX_EXTENSION_DAYS,
    MAX_PROTECTED_DAYS,
    REASON_MAX,
    TEXT_MAX,
    DealDetails,
)
from partners.webhooks import SECRET_MIN_LENGTH, SUBSCRIBABLE


class _AmountBounds(TypedDict):
    max_digits: int
    decimal_places: int
    min_value: int


AMOUNT: _AmountBounds = {"max_digits": 14, "decimal_places": 2, "min_value": 0}


class RegistrationForm(StyledFormMixin, forms.Form):
    """A partner registers a deal (the portal)."""

    company_name = forms.CharField(max_length=255, label=_("Company name"))
    website = forms.CharField(
        max_length=255,
        required=False,
        label=_("Website"),
        help_text=_("The company's web address, e.g. example.com."),
    )
    account = forms.CharField(
        max_length=64,
        required=False,
        label=_("Your account ID (optional)"),
        help_text=_("If the deal is with one of the accounts assigned to you, its ID."),
    )
    region = IdChoiceField(queryset=Region.objects.none(), required=False, label=_("Region"))
    vertical = IdChoiceField(queryset=Vertical.objects.none(), required=False, label=_("Industry"))
    size_band = forms.ChoiceField(
        choices=[("", "—"), *SizeBand.choices], required=False, label=_("Company size")
    )
    offering = forms.CharField(max_length=200, required=False, label=_("Product or offering"))
    amount = forms.DecimalField(required=False, label=_("Estimated amount"), **AMOUNT)
    # Checked by the service (ISO 4217), with the other fields, so every problem shows at once.
    currency = forms.CharField(
        max_length=10,
        initial="USD",
        label=_("Currency"),
        help_text=_("Three-letter code, e.g. USD, EUR, CNY."),
    )
    expected_close_on = forms.DateField(
        required=False, widget=DateInput(), label=_("Expected close date")
    )
    description = forms.CharField(
        required=False,
        max_length=TEXT_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": TEXT_MAX}),
        label=_("Description"),
    )
    contact_name = forms.CharField(max_length=200, required=False, label=_("Contact name"))
    contact_email = forms.EmailField(required=False, label=_("Contact e-mail"))
    contact_phone = forms.CharField(max_length=50, required=False, label=_("Contact phone"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        region_field = cast("IdChoiceField[Region]", self.fields["region"])
        vertical_field = cast("IdChoiceField[Vertical]", self.fields["vertical"])
        region_field.queryset = Region.objects.order_by("name")
        vertical_field.queryset = Vertical.objects.order_by("name")
        region_field.empty_label = "—"
        vertical_field.empty_label = "—"

    def details(self) -> DealDetails:
        data = self.cleaned_data
        return DealDetails(
            company_name=data["company_name"],
            region=data["region"],
            vertical=data["vertical"],
            size_band=data["size_band"],
            website=data["website"],
            offering=data["offering"],
            amount=data["amount"],
            currency=data["currency"],
            expected_close_on=data["expected_close_on"],
            description=data["description"],
            contact_name=data["contact_name"],
            contact_email=data["contact_email"],
            contact_phone=data["contact_phone"],
            account=data["account"],
        )


class WithdrawForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Why (optional)"),
    )


class ExtensionRequestForm(StyledFormMixin, forms.Form):
    note = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Why the deal needs longer (optional)"),
    )


# The managers' decisions -------------------------------------------------------------------------


class ApproveForm(StyledFormMixin, forms.Form):
    protected_days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_PROTECTED_DAYS,
        label=_("Protect for (days)"),
        help_text=_("Empty: the partner tier's protection."),
    )
    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Note to the partner (optional)"),
    )


class RejectForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Reason (the partner reads it)"),
    )


class WonForm(StyledFormMixin, forms.Form):
    amount = forms.DecimalField(label=_("Amount won"), **AMOUNT)
    closed_on = forms.DateField(widget=DateInput(), label=_("Closed on"))


class LostForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(
        required=False,
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Why it was lost (optional)"),
    )


class ExtendForm(StyledFormMixin, forms.Form):
    days = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_EXTENSION_DAYS,
        label=_("Extend by (days)"),
        help_text=_("Empty: the partner tier's extension."),
    )


class DeclineExtensionForm(StyledFormMixin, forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Reason (the partner reads it)"),
    )


class LinkAccountForm(StyledFormMixin, forms.Form):
    account = forms.CharField(
        max_length=64,
        required=False,
        label=_("Account external id"),
        help_text=_("Empty: treat it as a prospect, made an account on approval."),
    )


class ChannelManagerForm(StyledFormMixin, forms.Form):
    manager = IdChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        label=_("Channel manager"),
        empty_label=_("— every sales manager —"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        manager_field = cast("IdChoiceField[User]", self.fields["manager"])
        manager_field.queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name=Role.SALES_MANAGER)
            .order_by("username")
        )


class WebhookEndpointForm(StyledFormMixin, forms.Form):
    url = forms.CharField(max_length=500, label=_("Endpoint address"), initial="https://")
    secret = forms.CharField(
        max_length=128,
        min_length=SECRET_MIN_LENGTH,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        label=_("Secret"),
        help_text=format_lazy(
            _(
                "At least {count} characters; the receiver checks each delivery's signature "
                "with the same secret."
            ),
            count=SECRET_MIN_LENGTH,
        ),
    )
    description = forms.CharField(max_length=200, required=False, label=_("Description"))
    events = forms.MultipleChoiceField(
        choices=[(event.value, event.label) for event in SUBSCRIBABLE],
        widget=forms.CheckboxSelectMultiple,
        initial=[event.value for event in SUBSCRIBABLE],
        label=_("Events"),
    )
