from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import StyledFormMixin
from partners.models import PartnerKind, PartnerType
from partners.programme_selectors import tier_choices
from partners.services import PartnerProfile


class PartnerForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    external_id = forms.RegexField(
        regex=r"^[A-Za-z0-9._-]+$",
        max_length=64,
        label=_("External id"),
        help_text=_("The id your other systems use; letters, digits, dot, dash and underscore."),
        error_messages={"invalid": _("Use letters, digits, dot, dash and underscore only.")},
    )
    channel_kind = forms.ChoiceField(choices=PartnerKind.choices, label=_("Kind"))
    partner_type = forms.ChoiceField(choices=PartnerType.choices, label=_("Type"))
    tier = forms.ChoiceField(choices=tier_choices, label=_("Tier"))
    is_active = forms.BooleanField(required=False, initial=True, label=_("Active"))
    website = forms.URLField(required=False, assume_scheme="https", label=_("Website"))
    country = forms.CharField(required=False, max_length=64, label=_("Country"))
    notes = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label=_("Notes")
    )

    def profile(self) -> PartnerProfile:
        return PartnerProfile(**self.cleaned_data)


class ContactForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    title = forms.CharField(required=False, max_length=100, label=_("Job title"))
    email = forms.EmailField(required=False, label=_("E-mail"))
    phone = forms.CharField(required=False, max_length=50, label=_("Phone"))
    is_primary = forms.BooleanField(required=False, label=_("Primary contact"))


class InviteForm(StyledFormMixin, forms.Form):
    email = forms.EmailField(label=_("Invitee's e-mail"))
