"""Scheduled surveys in the workspace (define them, send a wave now, response rates per wave and
channel, the answers) and the page a partner's contact answers through its signed link."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from crm.exports import EXPORT_FORMATS, export_response, labelled
from crm.idempotency import once_per_form_token
from crm.roles import AuthenticatedHttpRequest, can_manage, internal_required, manager_required
from partners.models import Feedback, FeedbackCategory, PartnerKind
from partners.programme_forms import SurveyAnswerForm, SurveyForm
from partners.programme_models import Survey
from partners.programme_selectors import (
    ResponseRate,
    survey_responses_visible_to,
    survey_waves_visible_to,
    surveys_visible_to,
    wave_response_rates,
)
from partners.survey_services import (
    SurveyAlreadyAnswered,
    SurveyAnswer,
    SurveyLinkInvalid,
    SurveyValues,
    survey_create,
    survey_invitation_for,
    survey_response_submit,
    survey_update,
    survey_wave_send,
)

PAGE_SIZE = 50


def _rates(wave_ids: list[int]) -> dict[int, list[ResponseRate]]:
    """`wave_response_rates` with each channel kind's label."""
    kinds = dict(PartnerKind.choices)
    rates = wave_response_rates(wave_ids)
    for rows in rates.values():
        for row in rows:
            row["label"] = kinds.get(row["channel_kind"], row["channel_kind"])
    return rates


@internal_required
def survey_list(request: HttpRequest) -> HttpResponse:
    surveys = list(surveys_visible_to(request.user).order_by("name", "id"))
    waves = list(
        survey_waves_visible_to(request.user)
        .filter(survey__in=surveys)
        .order_by("-opens_on", "-id")
    )
    rates = wave_response_rates([wave.pk for wave in waves])
    latest: dict[int, dict[str, object]] = {}
    for wave in waves:
        latest.setdefault(wave.survey_id, {"wave": wave, "total": rates[wave.pk][-1:] or None})
    return render(
        request,
        "partners/programme/survey_list.html",
        {
            "rows": [{"survey": survey, "latest": latest.get(survey.pk)} for survey in surveys],
            "today": timezone.localdate(),
        },
    )


def _survey_form_page(
    request: HttpRequest, form: SurveyForm, *, title: str, survey: Survey | None = None
) -> HttpResponse:
    return render(
        request,
        "partners/programme/survey_form.html",
        {"form": form, "title": title, "survey": survey},
        status=400 if form.is_bound else 200,
    )


@manager_required
@once_per_form_token
def survey_create_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = SurveyForm(initial={"free_text_question": _("What should we do better?")})
    if request.method == "POST":
        form = SurveyForm(request.POST)
        if form.is_valid():
            try:
                survey = survey_create(values=form.values(), by=request.user)
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _("Survey %(name)s saved.") % {"name": survey.name})
                return redirect("programme:survey_detail", pk=survey.pk)
    return _survey_form_page(request, form, title=_("New survey"))


def _add_errors(form: SurveyForm, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@manager_required
def survey_edit_view(request: HttpRequest, pk: int) -> HttpResponse:
    survey = get_object_or_404(surveys_visible_to(request.user), pk=pk)
    form = SurveyForm(initial=vars(SurveyValues.of(survey)))
    if request.method == "POST":
        form = SurveyForm(request.POST)
        if form.is_valid():
            try:
                survey_update(survey=survey, values=form.values())
            except ValidationError as error:
                _add_errors(form, error)
            else:
                messages.success(request, _("Survey %(name)s saved.") % {"name": survey.name})
                return redirect("programme:survey_detail", pk=survey.pk)
    title = _("Edit the survey %(name)s") % {"name": survey.name}
    return _survey_form_page(request, form, title=title, survey=survey)


@internal_required
def survey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    survey = get_object_or_404(surveys_visible_to(request.user), pk=pk)
    waves = list(survey_waves_visible_to(request.user).filter(survey=survey).order_by("-opens_on"))
    rates = _rates([wave.pk for wave in waves])
    labels = dict(FeedbackCategory.choices)
    return render(
        request,
        "partners/programme/survey_detail.html",
        {
            "survey": survey,
            "topics": [labels.get(c, c) for c in survey.categories],
            "waves": [{"wave": wave, "rates": rates[wave.pk]} for wave in waves],
            "kinds": dict(PartnerKind.choices),
            "today": timezone.localdate(),
            "can_manage": can_manage(request.user),
        },
    )


@manager_required
@require_POST
def survey_send_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Open a wave of the survey today, on a worker (it sends one e-mail per contact)."""
    survey = get_object_or_404(surveys_visible_to(request.user), pk=pk)
    if not survey.is_active:
        messages.error(request, _("This survey is paused; resume it before sending a wave."))
    elif survey.waves.filter(opens_on=timezone.localdate()).exists():
        messages.error(request, _("A wave of this survey already opened today."))
    else:
        survey_wave_send(survey=survey, opens_on=timezone.localdate())
        messages.success(
            request,
            _("The wave is being sent to every active partner's contacts; reload in a moment."),
        )
    return redirect("programme:survey_detail", pk=survey.pk)


@internal_required
def wave_detail(request: HttpRequest, pk: int) -> HttpResponseBase:
    """A wave's response rates per channel kind, and its answers with their scores (exported
    as a list)."""
    wave = get_object_or_404(survey_waves_visible_to(request.user).select_related("survey"), pk=pk)
    responses = (
        survey_responses_visible_to(request.user)
        .filter(invitation__wave=wave)
        .select_related("partner", "invitation")
        .order_by("-created_at", "-id")
    )
    categories = list(wave.survey.categories)
    labels = dict(FeedbackCategory.choices)
    scores: dict[int, dict[str, int]] = {}
    for response_id, category, satisfaction in Feedback.objects.filter(
        survey_response__in=responses
    ).values_list("survey_response_id", "category", "satisfaction"):
        scores.setdefault(response_id, {})[category] = satisfaction
    if request.GET.get("format") in EXPORT_FORMATS:
        kinds = labelled(PartnerKind.choices)
        header = [
            _("Answered"),
            _("Partner"),
            _("Kind"),
            _("E-mail"),
            *(str(labels.get(c, c)) for c in categories),
            _("NPS"),
            _("Comment"),
        ]
        return export_response(
            fmt=request.GET["format"],
            filename=f"survey-wave-{wave.opens_on.isoformat()}",
            header=[str(h) for h in header],
            rows=(
                (
                    timezone.localtime(response.created_at).date(),
                    response.partner.name,
                    kinds.get(response.invitation.channel_kind, response.invitation.channel_kind),
                    response.invitation.email,
                    *(scores.get(response.pk, {}).get(c) for c in categories),
                    response.nps,
                    response.comment,
                )
                for response in responses
            ),
        )
    page = Paginator(responses, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "response": response,
            "scores": [scores.get(response.pk, {}).get(c) for c in categories],
        }
        for response in page
    ]
    return render(
        request,
        "partners/programme/wave_detail.html",
        {
            "wave": wave,
            "rates": _rates([wave.pk])[wave.pk],
            "kinds": dict(PartnerKind.choices),
            "topics": [labels.get(c, c) for c in categories],
            "page": page,
            "rows": rows,
            "querystring": "",
        },
    )


@never_cache
def survey_answer(request: HttpRequest, token: str) -> HttpResponse:
    """The survey page of a signed link: no sign-in; a link that is not ours, too old or of a
    closed wave shows why it cannot be answered, an answered one says thank you."""
    try:
        invitation = survey_invitation_for(token)
    except SurveyLinkInvalid:
        return render(request, "partners/programme/survey_closed.html", status=404)
    survey = invitation.wave.survey
    if invitation.responded_at is not None:
        return render(
            request, "partners/programme/survey_thanks.html", {"survey": survey, "again": True}
        )
    form = SurveyAnswerForm(categories=list(survey.categories), question=survey.free_text_question)
    status = 200
    if request.method == "POST":
        form = SurveyAnswerForm(
            request.POST, categories=list(survey.categories), question=survey.free_text_question
        )
        if form.is_valid():
            try:
                survey_response_submit(
                    invitation=invitation,
                    answer=SurveyAnswer(
                        scores=form.scores(),
                        nps=form.cleaned_data["nps"],
                        comment=form.cleaned_data["comment"],
                    ),
                    language=get_language() or "",
                )
            except SurveyAlreadyAnswered:
                return render(
                    request,
                    "partners/programme/survey_thanks.html",
                    {"survey": survey, "again": True},
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                return render(request, "partners/programme/survey_thanks.html", {"survey": survey})
        status = 400
    return render(
        request,
        "partners/programme/survey_answer.html",
        {"form": form, "survey": survey, "invitation": invitation, "wave": invitation.wave},
        status=status,
    )
