from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet

from crm.forms import IdChoiceField, StyledFormMixin
from crm.roles import Role
from partners.models import FeedbackCategory, FeedbackStatus, Partner
from partners.services import FEEDBACK_BODY_MAX, FeedbackEntry


def colleagues() -> QuerySet[User]:
    """Internal users feedback can be assigned to."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[Role.SALES_MANAGER, Role.SALES_REP])
        .distinct()
        .order_by("username")
    )


class FeedbackEntryForm(StyledFormMixin, forms.Form):
    category = forms.ChoiceField(choices=FeedbackCategory.choices)
    satisfaction = forms.TypedChoiceField(
        choices=[(n, str(n)) for n in range(1, 6)], coerce=int, label="Satisfaction (1–5)"
    )
    nps = forms.TypedChoiceField(
        choices=[("", "—"), *[(n, str(n)) for n in range(0, 11)]],
        coerce=int,
        empty_value=None,
        required=False,
        label="How likely to recommend us (0–10)",
    )
    subject = forms.CharField(max_length=200)
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), max_length=FEEDBACK_BODY_MAX, label="Message"
    )

    def entry(self) -> FeedbackEntry:
        data = self.cleaned_data
        return FeedbackEntry(
            category=data["category"],
            satisfaction=data["satisfaction"],
            nps=data["nps"],
            subject=data["subject"],
            body=data["body"],
        )


class FeedbackLogForm(FeedbackEntryForm):
    partner = IdChoiceField(queryset=Partner.objects.none())
    field_order = ["partner"]

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = cast("IdChoiceField[Partner]", self.fields["partner"])
        partner_field.queryset = partners.order_by("name")


class FeedbackTriageForm(StyledFormMixin, forms.Form):
    status = forms.ChoiceField(choices=FeedbackStatus.choices)
    assignee: IdChoiceField[User] = IdChoiceField(
        queryset=None, required=False, label="Assigned to"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assignee_field = cast("IdChoiceField[User]", self.fields["assignee"])
        assignee_field.queryset = colleagues()


class FeedbackMessageForm(StyledFormMixin, forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=FEEDBACK_BODY_MAX, label="Message"
    )
