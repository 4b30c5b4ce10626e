"""Scheduled partner surveys: defining them, sending a wave to every active partner's contacts
through the outbox with a signed, expiring link that needs no password, reminding once before
a wave closes, and taking answers, which land as feedback with the `survey` source and count
in satisfaction and NPS like any scored feedback (docs/metrics.md rule 6).

Every function is keyword-only, validates with `full_clean()` and raises ValidationError with a
message a manager (or the person answering) can act on; nothing is half saved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.enqueue import task_enqueue
from crm.services import email_queue
from partners.models import (
    Feedback,
    FeedbackCategory,
    FeedbackSource,
    FeedbackStatus,
    Partner,
    PartnerContact,
)
from partners.programme_models import (
    SCHEDULE_MONTHS,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    SurveyWave,
)

logger = logging.getLogger(__name__)


LINK_SALT = "partners.survey-invitation"
# A link is refused after this long whatever its wave says (waves stay open at most 90 days).
LINK_MAX_AGE = timedelta(days=100)
COMMENT_MAX = 5000
# The languages survey e-mails are written in: one e-mail carries both.
EMAIL_LANGUAGES = ("en", "zh-hans")


@dataclass
class SurveyValues:
    """What a manager sets on a survey: the same fields the survey form edits."""

    name: str
    categories: list[str]
    intro: str = ""
    free_text_question: str = "What should we do better?"
    schedule: str = "quarterly"
    send_day: int = 1
    open_days: int = 21
    reminder_days_before_close: int = 7
    is_active: bool = True

    @classmethod
    def of(cls, survey: Survey) -> SurveyValues:
        return cls(**{name: getattr(survey, name) for name in cls.__dataclass_fields__})


def _apply(survey: Survey, values: SurveyValues) -> Survey:
    categories = list(dict.fromkeys(values.categories))
    unknown = [c for c in categories if c not in FeedbackCategory.values]
    if not categories or unknown:
        raise ValidationError({"categories": _("Choose at least one feedback category to rate.")})
    for name, value in vars(values).items():
        setattr(survey, name, value.strip() if isinstance(value, str) else value)
    survey.categories = categories
    survey.full_clean()
    survey.save()
    return survey


@transaction.atomic
def survey_create(*, values: SurveyValues, by: User | None) -> Survey:
    """Define a survey. Raises ValidationError for no category, a reminder that would fall
    outside the wave, or a value out of range."""
    return _apply(Survey(created_by=by), values)


@transaction.atomic
def survey_update(*, survey: Survey, values: SurveyValues) -> Survey:
    """Change a survey; waves already sent keep their questions' answers as they were."""
    return _apply(Survey.objects.select_for_update().get(pk=survey.pk), values)


def survey_link_token(invitation: SurveyInvitation) -> str:
    """The signed token of an invitation's link: it names the invitation, needs no password,
    and stops working when the wave closes (and after `LINK_MAX_AGE` in any case)."""
    return signing.dumps({"invitation": invitation.pk}, salt=LINK_SALT, compress=True)


class SurveyLinkInvalid(Exception):
    """The link is not one we signed, is too old, or its wave has closed."""


def survey_invitation_for(token: str, *, today: date | None = None) -> SurveyInvitation:
    """The invitation a link's token names, while its wave is open. Raises SurveyLinkInvalid
    otherwise (a forged or damaged token, an unknown invitation, a closed wave)."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE)
        invitation_id = int(data["invitation"])
    except (signing.BadSignature, KeyError, TypeError, ValueError) as error:
        raise SurveyLinkInvalid("not a valid survey link") from error
    invitation = (
        SurveyInvitation.objects.select_related("wave__survey", "partner")
        .filter(pk=invitation_id)
        .first()
    )
    day = today or timezone.localdate()
    if invitation is None or not invitation.partner.is_active:
        raise SurveyLinkInvalid("not a valid survey link")
    if not invitation.wave.opens_on <= day <= invitation.wave.closes_on:
        raise SurveyLinkInvalid("this survey has closed")
    return invitation


def survey_link(invitation: SurveyInvitation) -> str:
    return settings.SITE_URL.rstrip("/") + f"/survey/{survey_link_token(invitation)}/"


def _email(invitation: SurveyInvitation, *, reminder: bool) -> None:
    context = {
        "invitation": invitation,
        "survey": invitation.wave.survey,
        "wave": invitation.wave,
        "partner": invitation.partner,
        "link": survey_link(invitation),
        "reminder": reminder,
    }
    parts = []
    subjects = []
    for language in EMAIL_LANGUAGES:
        with translation.override(language):
            parts.append(render_to_string("emails/survey_invitation.txt", context))
            subjects.append(
                _("Reminder: %(survey)s") % {"survey": invitation.wave.survey.name}
                if reminder
                else _("%(survey)s: a few questions from your channel team")
                % {"survey": invitation.wave.survey.name}
            )
    email_queue(
        to=[invitation.email],
        subject=" / ".join(subjects),
        body_text="\n\n———\n\n".join(parts),
        topic="survey-reminder" if reminder else "survey-invitation",
    )


@dataclass(frozen=True)
class WaveOpened:
    wave: SurveyWave
    invitations: int
    partners_without_address: list[int] = field(default_factory=list)


def survey_wave_send(*, survey: Survey, opens_on: date) -> None:
    """After the commit, open and send a wave of `survey` on a worker (one e-mail per contact
    can take a while); with the broker down, here, so a manager's "send now" is never lost."""
    survey_id = survey.pk

    def send() -> None:
        try:
            task_enqueue("partners.survey_wave_open", survey_id, opens_on.isoformat())
        except Exception as error:  # noqa: BLE001 - broker down: open it here instead
            logger.warning(
                "survey %s: broker unavailable (%s); opening the wave here", survey_id, error
            )
            survey_wave_open_if_due(survey_id=survey_id, opens_on=opens_on)

    transaction.on_commit(send)


def survey_wave_open_if_due(*, survey_id: int, opens_on: date) -> int:
    """Open and send a wave of the survey `survey_id` on `opens_on` (a manager's "send now",
    on the worker or in the request); returns the invitations sent. A survey deleted, paused,
    or already opened that day is left alone (0)."""
    survey = Survey.objects.filter(pk=survey_id).first()
    if survey is None:
        return 0
    try:
        return survey_wave_open(survey=survey, opens_on=opens_on).invitations
    except ValidationError:
        return 0


def survey_wave_open(*, survey: Survey, opens_on: date) -> WaveOpened:
    """Open a wave of `survey` on `opens_on` and send it: one invitation, with its own link,
    to every contact with an e-mail address of every active partner, each e-mail through the
    outbox. Opening the same survey twice on one day opens it once (the database holds it).
    Raises ValidationError for an inactive survey or a day already taken."""
    if not survey.is_active:
        raise ValidationError(_("This survey is paused; resume it before sending a wave."))
    try:
        with transaction.atomic():
            wave = SurveyWave(
                survey=survey,
                opens_on=opens_on,
                closes_on=opens_on + timedelta(days=survey.open_days - 1),
            )
            wave.full_clean(validate_constraints=False)
            wave.save()
            opened = _invite(wave)
    except IntegrityError as error:
        raise ValidationError(
            _("A wave of this survey already opened on %(day)s.") % {"day": opens_on.isoformat()}
        ) from error
    return opened


def _invite(wave: SurveyWave) -> WaveOpened:
    partners = {p.pk: p for p in Partner.objects.filter(is_active=True)}
    addresses: dict[tuple[int, str], PartnerContact] = {}
    for contact in PartnerContact.objects.filter(partner_id__in=list(partners)).exclude(email=""):
        addresses.setdefault((contact.partner_id, contact.email.lower()), contact)
    invitations = SurveyInvitation.objects.bulk_create(
        [
            SurveyInvitation(
                wave=wave,
                partner=partners[partner_id],
                contact=contact,
                email=contact.email,
                channel_kind=partners[partner_id].channel_kind,
            )
            for (partner_id, _email_address), contact in sorted(addresses.items())
        ],
        batch_size=1000,
    )
    for invitation in invitations:
        invitation.wave = wave
        _email(invitation, reminder=False)
    wave.sent_at = timezone.now()
    wave.save(update_fields=["sent_at", "updated_at"])
    reached = {partner_id for partner_id, _address in addresses}
    return WaveOpened(wave, len(invitations), sorted(set(partners) - reached))


def wave_due_on(survey: Survey, today: date) -> date | None:
    """The day a wave of `survey` is due in `today`'s month (its `send_day` of a scheduled
    month), when that day has come; None otherwise."""
    if today.month not in SCHEDULE_MONTHS[survey.schedule] or today.day < survey.send_day:
        return None
    return today.replace(day=survey.send_day)


def surveys_send_due(*, today: date) -> list[WaveOpened]:
    """The daily job: open every active survey's wave that is due this month and not yet
    opened (a wave opened on any day of the month counts), and send the reminders due."""
    opened = []
    for survey in Survey.objects.filter(is_active=True):
        due = wave_due_on(survey, today)
        if due is None:
            continue
        month_start = today.replace(day=1)
        if survey.waves.filter(opens_on__gte=month_start, opens_on__lte=today).exists():
            continue
        try:
            opened.append(survey_wave_open(survey=survey, opens_on=today))
        except ValidationError:
            continue  # opened by a concurrent run meanwhile
    survey_reminders_send(today=today)
    return opened


def survey_reminders_send(*, today: date) -> int:
    """Remind, once, everyone who has not answered a wave whose reminder day has come and that
    is still open (the wave's `closes_on` minus the survey's reminder days). Returns how many
    were reminded. A wave is claimed row by row, so two jobs at once remind each person once."""
    reminded = 0
    waves = SurveyWave.objects.filter(
        reminded_at__isnull=True, opens_on__lte=today, closes_on__gte=today
    ).select_related("survey")
    for wave in waves:
        if today < wave.closes_on - timedelta(days=wave.survey.reminder_days_before_close):
            continue
        with transaction.atomic():
            locked = SurveyWave.objects.select_for_update().get(pk=wave.pk)
            if locked.reminded_at is not None:
                continue
            waiting = locked.invitations.filter(
                responded_at__isnull=True, reminded_at__isnull=True, partner__is_active=True
            ).select_related("partner", "wave__survey")
            now = timezone.now()
            for invitation in waiting:
                _email(invitation, reminder=True)
                reminded += 1
            locked.invitations.filter(responded_at__isnull=True, reminded_at__isnull=True).update(
                reminded_at=now
            )
            locked.reminded_at = now
            locked.save(update_fields=["reminded_at", "updated_at"])
    return reminded


@dataclass(frozen=True)
class SurveyAnswer:
    """What a contact answers: a 1-5 score per category rated (categories left out were
    skipped), an NPS score (0-10, optional) and a comment."""

    scores: Mapping[str, int]
    nps: int | None = None
    comment: str = ""


class SurveyAlreadyAnswered(ValidationError):
    """The invitation has its answer already."""


@transaction.atomic
def survey_response_submit(
    *, invitation: SurveyInvitation, answer: SurveyAnswer, language: str = ""
) -> SurveyResponse:
    """Take the answer to an invitation, once: one feedback entry (source `survey`) per
    category rated, with its score; the NPS score and the comment go on the first of them, so
    each counts once in the figures (docs/metrics.md rule 6). The entry with a comment waits
    in the feedback inbox as new; the others are filed closed (scores, nothing to answer).
    Raises SurveyAlreadyAnswered after an answer, ValidationError for no score, a score out of
    range, a category the survey does not ask about or an over-long comment; nothing is saved
    then."""
    locked = (
        SurveyInvitation.objects.select_for_update(of=("self",))
        .select_related("wave__survey", "partner")
        .get(pk=invitation.pk)
    )
    if locked.responded_at is not None:
        raise SurveyAlreadyAnswered(_("This survey has been answered already. Thank you!"))
    survey = locked.wave.survey
    scores = {category: score for category, score in answer.scores.items() if score is not None}
    errors: dict[str, str] = {}
    if not scores:
        errors["scores"] = _("Rate at least one topic from 1 to 5.")
    for category, score in scores.items():
        if category not in survey.categories:
            errors["scores"] = _("Rate only the topics this survey asks about.")
        elif not 1 <= int(score) <= 5:
            errors[f"score_{category}"] = _("Give a score from 1 to 5.")
    if answer.nps is not None and not 0 <= answer.nps <= 10:
        errors["nps"] = _("Give a score from 0 to 10.")
    comment = answer.comment.strip()
    if len(comment) > COMMENT_MAX:
        errors["comment"] = _("Keep the comment to %(count)s characters.") % {"count": COMMENT_MAX}
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    response = SurveyResponse(
        invitation=locked,
        partner=locked.partner,
        nps=answer.nps,
        comment=comment,
        language=language[:16],
    )
    response.full_clean()
    response.save()
    ordered = [c for c in survey.categories if c in scores]
    # Stored as data, so written without words of one language: the topic is the entry's
    # category, shown in the reader's language.
    default_body = f"{survey.name} · {locked.wave.opens_on.isoformat()}"
    for position, category in enumerate(ordered):
        first = position == 0
        entry = Feedback(
            partner=locked.partner,
            category=category,
            satisfaction=int(scores[category]),
            nps=answer.nps if first else None,
            subject=survey.name[:200],
            body=comment if first and comment else default_body,
            status=FeedbackStatus.NEW if first and comment else FeedbackStatus.CLOSED,
            source=FeedbackSource.SURVEY,
            survey_response=response,
        )
        # The partner and the response were just read and written. The fields' own validation
        # covers what each check constraint of the table holds (score and NPS ranges, the
        # choices; the survey source is set here): checked again, the related rows and the
        # constraints would cost eight queries per rated topic.
        entry.full_clean(
            exclude=["attachment", "partner", "survey_response"], validate_constraints=False
        )
        entry.save()
    locked.responded_at = now
    locked.save(update_fields=["responded_at", "updated_at"])
    invitation.responded_at = now
    return response
