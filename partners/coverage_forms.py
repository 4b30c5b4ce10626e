from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from channels.models import SalesRep
from channels.services import CoverageOwner
from crm.forms import DateInput, IdChoiceField, RemoteSelect, StyledFormMixin
from crm.models import ChannelKind
from partners.models import Partner


class CoverageAssignForm(StyledFormMixin, forms.Form):
    kind = forms.ChoiceField(choices=ChannelKind.choices, label=_("Channel kind"))
    rep = IdChoiceField(
        queryset=SalesRep.objects.none(), required=False, label=_("Sales rep (direct)")
    )
    partner = IdChoiceField(
        queryset=Partner.objects.none(), required=False, label=_("Partner or distributor")
    )
    online_source = forms.CharField(required=False, max_length=100, label=_("Online source"))
    start_date = forms.DateField(widget=DateInput(), label=_("From"))
    end_date = forms.DateField(widget=DateInput(), required=False, label=_("Until (optional)"))

    def __init__(
        self,
        *args: Any,
        reps: QuerySet[SalesRep],
        partners: QuerySet[Partner],
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        rep_field = cast("IdChoiceField[SalesRep]", self.fields["rep"])
        partner_field = cast("IdChoiceField[Partner]", self.fields["partner"])
        # Choices come from what the user may see, so no other id can be posted.
        rep_field.queryset = reps.filter(is_active=True).order_by("name")
        partner_field.queryset = partners.filter(is_active=True).order_by("channel_kind", "name")
        # Hundreds of reps and partners: searched as the user types, not all on the page.
        rep_field.widget = RemoteSelect(url=reverse("partners:rep_choices") + "?active=1")
        partner_field.widget = RemoteSelect(url=reverse("partners:partner_choices") + "?active=1")
        for field in (rep_field, partner_field):
            field.widget.choices = field.choices
            field.widget.is_required = field.required
            field.widget.attrs["class"] = "form-select"

    def owner(self) -> CoverageOwner:
        data = self.cleaned_data
        return CoverageOwner(
            kind=data["kind"],
            rep=data.get("rep"),
            partner=data.get("partner"),
            online_source=data.get("online_source", ""),
        )


class CoverageEndForm(StyledFormMixin, forms.Form):
    end_date = forms.DateField(widget=DateInput(), label=_("Last day of coverage"))
