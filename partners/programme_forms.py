"""Forms of the partner programme: tiers, the grace period, a partner's tier, certifications,
targets, surveys and the survey page partners answer."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels.models import SalesRep
from crm.forms import DateInput, IdChoiceField, StyledFormMixin
from crm.roles import INTERNAL_ROLES
from partners.models import FeedbackCategory, Partner
from partners.programme_models import REQUIREMENTS, SurveySchedule, Tier
from partners.programme_selectors import tier_choices
from partners.programme_services import TierValues
from partners.survey_services import SurveyValues

_REQUIREMENT_HELP = _("Blank: not required.")


class TierForm(StyledFormMixin, forms.ModelForm[Tier]):
    """A tier's name, rank, requirements and benefits."""

    class Meta:
        model = Tier
        fields = [
            "code",
            "name",
            "name_zh",
            "rank",
            *(r.field for r in REQUIREMENTS),
            "protection_days",
            "extension_days",
            "auto_approve",
            "discount_percent",
            "benefits_note",
        ]
        widgets = {"benefits_note": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for requirement in REQUIREMENTS:
            field = self.fields[requirement.field]
            field.label = _("Minimum: %(requirement)s") % {"requirement": requirement.label}
            field.help_text = _REQUIREMENT_HELP

    def validate_unique(self) -> None:
        # The service checks the code and rank again under a lock; errors come back from it.
        pass

    def values(self) -> TierValues:
        return TierValues(**{name: self.cleaned_data[name] for name in TierValues.__annotations__})


class ProgrammeSettingsForm(StyledFormMixin, forms.Form):
    downgrade_grace_weeks = forms.IntegerField(
        min_value=0,
        max_value=52,
        label=_("Downgrade grace period (weeks)"),
        help_text=_(
            "A partner below its tier's requirements keeps the tier this many closed weeks; "
            "it moves down in the next week it is still below them."
        ),
    )


class PartnerTierForm(StyledFormMixin, forms.Form):
    tier = forms.ChoiceField(choices=tier_choices, label=_("Tier"))
    reason = forms.CharField(
        max_length=2000,
        required=False,
        label=_("Why"),
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the tier history. The weekly evaluation goes on from this tier."),
    )


class CertificationForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200, label=_("Certification"))
    holder = forms.CharField(max_length=200, required=False, label=_("Held by"))
    earned_on = forms.DateField(label=_("Earned on"), widget=DateInput())
    expires_on = forms.DateField(required=False, label=_("Expires on"), widget=DateInput())


def _this_year() -> int:
    return timezone.localdate().year


class TargetForm(StyledFormMixin, forms.Form):
    """A yearly target of a partner or of a rep; which one is given by the page (partner) or
    chosen (rep)."""

    year = forms.IntegerField(min_value=2000, max_value=2199, initial=_this_year, label=_("Year"))
    accounts_covered = forms.IntegerField(
        min_value=0, max_value=2_000_000_000, required=False, label=_("Accounts covered")
    )
    conversions = forms.IntegerField(
        min_value=0, max_value=2_000_000_000, required=False, label=_("Conversions")
    )
    revenue = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=14,
        decimal_places=2,
        required=False,
        label=_("Revenue (reporting currency)"),
    )


class RepTargetForm(TargetForm):
    rep = IdChoiceField(queryset=SalesRep.objects.none(), label=_("Rep"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        rep_field = cast("IdChoiceField[SalesRep]", self.fields["rep"])
        rep_field.queryset = SalesRep.objects.filter(is_active=True).order_by("name")
        self.order_fields(["rep"])


class SurveyForm(StyledFormMixin, forms.Form):
    name = forms.CharField(max_length=200, label=_("Name"))
    intro = forms.CharField(
        max_length=2000,
        required=False,
        label=_("Introduction"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    categories = forms.MultipleChoiceField(
        choices=FeedbackCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        label=_("Topics rated from 1 to 5"),
    )
    free_text_question = forms.CharField(max_length=300, label=_("Free-text question"))
    schedule = forms.ChoiceField(choices=SurveySchedule.choices, label=_("Schedule"))
    send_day = forms.IntegerField(
        min_value=1, max_value=28, initial=1, label=_("Day of the month a wave opens")
    )
    open_days = forms.IntegerField(
        min_value=3, max_value=90, initial=21, label=_("Days a wave stays open")
    )
    reminder_days_before_close = forms.IntegerField(
        min_value=1, max_value=60, initial=7, label=_("Reminder, days before a wave closes")
    )
    is_active = forms.BooleanField(required=False, initial=True, label=_("Send on schedule"))

    def values(self) -> SurveyValues:
        return SurveyValues(**self.cleaned_data)


SCORE_CHOICES = [("", "—"), *((str(n), str(n)) for n in range(1, 6))]
NPS_CHOICES = [("", "—"), *((str(n), str(n)) for n in range(0, 11))]


class SurveyAnswerForm(forms.Form):
    """The page a contact answers: one 1-5 score per topic of the survey (each may be
    skipped), an NPS score and the survey's free-text question."""

    def __init__(self, *args: Any, categories: list[str], question: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        labels = dict(FeedbackCategory.choices)
        for category in categories:
            self.fields[f"score_{category}"] = forms.TypedChoiceField(
                choices=SCORE_CHOICES,
                coerce=int,
                empty_value=None,
                required=False,
                label=labels.get(category, category),
                widget=forms.RadioSelect,
            )
        self.fields["nps"] = forms.TypedChoiceField(
            choices=NPS_CHOICES,
            coerce=int,
            empty_value=None,
            required=False,
            label=_("How likely are you to recommend working with us to a peer? (0-10)"),
            widget=forms.RadioSelect,
        )
        self.fields["comment"] = forms.CharField(
            max_length=5000,
            required=False,
            label=question,
            widget=forms.Textarea(attrs={"rows": 4}),
        )
        self.categories = categories

    def scores(self) -> dict[str, int]:
        return {
            category: self.cleaned_data[f"score_{category}"]
            for category in self.categories
            if self.cleaned_data.get(f"score_{category}") is not None
        }


class ReviewOpenForm(StyledFormMixin, forms.Form):
    partner = IdChoiceField(queryset=Partner.objects.none(), label=_("Partner"))
    quarter = forms.RegexField(
        regex=r"^(20[0-9]{2}|21[0-9]{2})-Q[1-4]$",
        max_length=7,
        label=_("Quarter"),
        help_text=_("For example 2026-Q4."),
        error_messages={"invalid": _("Write the quarter like 2026-Q4.")},
    )

    def __init__(self, *args: Any, partners: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chosen = partners if partners is not None else Partner.objects.none()
        cast("IdChoiceField[Partner]", self.fields["partner"]).queryset = chosen
        if not self.is_bound:
            today = timezone.localdate()
            self.initial.setdefault("quarter", f"{today.year}-Q{(today.month - 1) // 3 + 1}")

    def year_and_quarter(self) -> tuple[int, int]:
        year, quarter = self.cleaned_data["quarter"].split("-Q")
        return int(year), int(quarter)


class ReviewRecordForm(StyledFormMixin, forms.Form):
    held_on = forms.DateField(required=False, label=_("Held on"), widget=DateInput())
    attendees = forms.CharField(max_length=500, required=False, label=_("Attendees"))
    notes = forms.CharField(
        max_length=20000, required=False, label=_("Notes"), widget=forms.Textarea(attrs={"rows": 8})
    )


class ReviewActionForm(StyledFormMixin, forms.Form):
    description = forms.CharField(max_length=500, label=_("Action"))
    owner = IdChoiceField(
        queryset=get_user_model().objects.none(),
        required=False,
        label=_("Owner (ours)"),
        empty_label=_("— someone at the partner —"),
    )
    partner_owner = forms.CharField(max_length=200, required=False, label=_("Owner at the partner"))
    due_on = forms.DateField(label=_("Due on"), widget=DateInput())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast("IdChoiceField[Any]", self.fields["owner"]).queryset = (
            get_user_model()
            .objects.filter(is_active=True, groups__name__in=[r.value for r in INTERNAL_ROLES])
            .distinct()
            .order_by("username")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("owner") and not (data.get("partner_owner") or "").strip():
            self.add_error("owner", _("Name one owner: one of ours, or someone at the partner."))
        return data
