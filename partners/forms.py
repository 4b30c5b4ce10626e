from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from crm.forms import DateInput, IdChoiceField, IdMultipleChoiceField, StyledFormMixin
from crm.models import Region, Vertical
from partners.models import AgreementType, Partner
from partners.services import SIGNED_DOCUMENT_MAX_BYTES, AgreementTerms


class AgreementDraftForm(StyledFormMixin, forms.Form):
    agreement_type = forms.ChoiceField(choices=AgreementType.choices, label=_("Agreement type"))
    start_date = forms.DateField(widget=DateInput(), label=_("Start date"))
    end_date = forms.DateField(widget=DateInput(), label=_("End date"))
    regions = IdMultipleChoiceField(
        queryset=Region.objects.order_by("name"),
        required=False,
        label=_("Regions"),
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_(
            "Hold Ctrl (⌘ on a Mac) and click to choose several, or to clear one. "
            "None chosen means all regions."
        ),
    )
    verticals = IdMultipleChoiceField(
        queryset=Vertical.objects.order_by("name"),
        required=False,
        label=_("Verticals"),
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text=_(
            "Hold Ctrl (⌘ on a Mac) and click to choose several, or to clear one. "
            "None chosen means all verticals."
        ),
    )
    exclusive = forms.BooleanField(required=False, label=_("Exclusive"))
    auto_renew = forms.BooleanField(required=False, label=_("Renews automatically"))
    notice_days = forms.IntegerField(
        min_value=0, max_value=730, initial=30, label=_("Notice period (days)")
    )
    discount_percent = forms.DecimalField(
        required=False, min_value=0, max_value=100, decimal_places=2, label=_("Discount (%)")
    )
    revenue_share_percent = forms.DecimalField(
        required=False, min_value=0, max_value=100, decimal_places=2, label=_("Revenue share (%)")
    )
    annual_target = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label=_("Annual target")
    )
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$",
        initial="USD",
        max_length=3,
        label=_("Currency"),
        error_messages={
            "invalid": _("Use a three-letter ISO currency code such as USD, EUR or CNY.")
        },
    )
    responsibilities = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Responsibilities")
    )
    rights = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Rights")
    )

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("start_date"), data.get("end_date")
        if start and end and end < start:
            self.add_error("end_date", _("The end date cannot be before the start date."))
        return data

    def terms(self) -> AgreementTerms:
        data = self.cleaned_data
        return AgreementTerms(
            agreement_type=data["agreement_type"],
            start_date=data["start_date"],
            end_date=data["end_date"],
            regions=list(data["regions"]),
            verticals=list(data["verticals"]),
            exclusive=data["exclusive"],
            auto_renew=data["auto_renew"],
            notice_days=data["notice_days"],
            discount_percent=data["discount_percent"],
            revenue_share_percent=data["revenue_share_percent"],
            annual_target=data["annual_target"],
            currency=data["currency"],
            responsibilities=data["responsibilities"],
            rights=data["rights"],
        )

    @classmethod
    def initial_from(cls, terms: AgreementTerms) -> dict[str, object]:
        return {name: getattr(terms, name) for name in cls.base_fields}


class AgreementCreateForm(AgreementDraftForm):
    partner = IdChoiceField(queryset=Partner.objects.none(), label=_("Partner"))

    field_order = ["partner"]

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = cast("IdChoiceField[Partner]", self.fields["partner"])
        # Only partners the user may see, and only active ones, can receive a draft.
        partner_field.queryset = partners.filter(is_active=True).order_by("name")


class AgreementActivateForm(StyledFormMixin, forms.Form):
    signed_on = forms.DateField(widget=DateInput(), label=_("Signed on"))
    signed_document = forms.FileField(
        label=_("Signed agreement (PDF)"),
        help_text=format_lazy(
            _("PDF, at most {size} MB."), size=SIGNED_DOCUMENT_MAX_BYTES // (1024 * 1024)
        ),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf"}),
    )


class AgreementTerminateForm(StyledFormMixin, forms.Form):
    terminated_on = forms.DateField(widget=DateInput(), label=_("Terminated on"))
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=2000, label=_("Reason")
    )
