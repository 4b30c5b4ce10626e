from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import StyledFormMixin
from partners.feedback_forms import nps_field, satisfaction_field
from partners.models import FeedbackCategory
from partners.services import FEEDBACK_BODY_MAX


class PortalFeedbackForm(StyledFormMixin, forms.Form):
    category = forms.ChoiceField(choices=FeedbackCategory.choices, label=_("Category"))
    satisfaction = satisfaction_field()
    nps = nps_field(_("How likely are you to recommend us? (0–10, optional)"))
    subject = forms.CharField(max_length=200, label=_("Subject"))
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": FEEDBACK_BODY_MAX}),
        max_length=FEEDBACK_BODY_MAX,
        label=_("Message"),
    )
    attachment = forms.FileField(
        required=False,
        label=_("Attachment (optional)"),
        help_text=_("PDF, PNG or JPEG, at most 5 MB."),
        widget=forms.ClearableFileInput(attrs={"accept": "application/pdf,image/png,image/jpeg"}),
    )


class PortalFollowUpForm(StyledFormMixin, forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": FEEDBACK_BODY_MAX}),
        max_length=FEEDBACK_BODY_MAX,
        label=_("Your message"),
    )
