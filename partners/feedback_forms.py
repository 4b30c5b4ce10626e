from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

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


SATISFACTION_CHOICES = [
    ("", _("Choose a score")),
    (1, _("1 = very poor")),
    (2, _("2 = poor")),
    (3, _("3 = fair")),
    (4, _("4 = good")),
    (5, _("5 = excellent")),
]


def satisfaction_field() -> forms.TypedChoiceField:
    """The 1-5 satisfaction score. Nothing is preselected and a score is required: a default
    would be submitted by everyone who skips the field and skew satisfaction and NPS."""
    return forms.TypedChoiceField(
        choices=SATISFACTION_CHOICES,
        coerce=int,
        label=_("Satisfaction"),
        error_messages={"required": _("Choose a satisfaction score from 1 to 5.")},
    )


def nps_field(label: StrOrPromise) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        choices=[("", _("No answer")), *[(n, str(n)) for n in range(0, 11)]],
        coerce=int,
        empty_value=None,
        required=False,
        label=label,
    )


class FeedbackEntryForm(StyledFormMixin, forms.Form):
    category = forms.ChoiceField(choices=FeedbackCategory.choices, label=_("Category"))
    satisfaction = satisfaction_field()
    nps = nps_field(_("How likely to recommend us (0–10, optional)"))
    subject = forms.CharField(max_length=200, label=_("Subject"))
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}), max_length=FEEDBACK_BODY_MAX, label=_("Message")
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
    partner = IdChoiceField(queryset=Partner.objects.none(), label=_("Partner"))
    field_order = ["partner"]

    def __init__(self, *args: Any, partners: QuerySet[Partner], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        partner_field = cast("IdChoiceField[Partner]", self.fields["partner"])
        partner_field.queryset = partners.order_by("name")


class ColleagueChoiceField(IdChoiceField[User]):
    """A colleague by name (the username when no name is set)."""

    def label_from_instance(self, obj: User) -> str:
        return obj.get_full_name() or obj.get_username()


class FeedbackTriageForm(StyledFormMixin, forms.Form):
    status = forms.ChoiceField(choices=FeedbackStatus.choices, label=_("Status"))
    assignee = ColleagueChoiceField(queryset=None, required=False, label=_("Assigned to"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(ColleagueChoiceField, self.fields["assignee"]).queryset = colleagues()


class FeedbackMessageForm(StyledFormMixin, forms.Form):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=FEEDBACK_BODY_MAX, label=_("Message")
    )
