from __future__ import annotations

from django import forms

from crm.forms import StyledFormMixin
from partners.models import PartnerKind, PartnerTier, PartnerType
from partners.services import PartnerProfile


class PartnerForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200)
    external_id = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]+$",
        max_length=64,
        label="External id",
        help_text="The id your other systems use; letters, digits, dot, dash and underscore.",
        error_messages={"invalid": "Use letters, digits, dot, dash and underscore only."},
    )
    channel_kind = forms.ChoiceField(choices=PartnerKind.choices, label="Kind")
    partner_type = forms.ChoiceField(choices=PartnerType.choices, label="Type")
    tier = forms.ChoiceField(choices=PartnerTier.choices)
    is_active = forms.BooleanField(required=False, initial=True, label="Active")
    website = forms.URLField(required=False, assume_scheme="https")
    country = forms.CharField(required=False, max_length=64)
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def profile(self) -> PartnerProfile:
        return PartnerProfile(**self.cleaned_data)


class ContactForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200)
    title = forms.CharField(required=False, max_length=100)
    email = forms.EmailField(required=False)
    phone = forms.CharField(required=False, max_length=50)
    is_primary = forms.BooleanField(required=False, label="Primary contact")


class InviteForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(label="Invitee's e-mail")
