"""The partner programme of the demo: tiers with requirements and benefits, certifications,
this year's and last year's targets, one past survey wave with its answers, and a quarterly
business review with agreed actions. The weekly metrics run (`compute_metrics --last 53` in
`make demo`) then evaluates the tiers over the demo weeks, so the tier history has changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from channels.models import CoverageAssignment, SalesRep
from crm.models import OutboundEmail
from crm.roles import Role
from partners.models import (
    Feedback,
    FeedbackCategory,
    FeedbackReply,
    Partner,
    PartnerKind,
)
from partners.programme_models import (
    BusinessReview,
    Survey,
    SurveyInvitation,
    SurveyResponse,
    Target,
    Tier,
)
from partners.programme_services import (
    TierValues,
    certification_add,
    programme_settings_set,
    target_set,
    tier_create,
    tier_update,
)
from partners.review_services import (
    business_review_open,
    business_review_record,
    review_action_add,
    review_action_set_done,
)
from partners.survey_services import (
    SurveyAnswer,
    SurveyValues,
    survey_create,
    survey_response_submit,
    survey_wave_open,
)

DEMO_TIERS = (
    TierValues(
        code="registered",
        name="Registered",
        name_zh="注册",
        rank=0,
        protection_days=60,
        extension_days=30,
        benefits_note="Partner portal, deal registration, online training.",
    ),
    TierValues(
        code="silver",
        name="Silver",
        name_zh="银牌",
        rank=1,
        min_covered_accounts=10,
        min_satisfaction=Decimal("2.80"),
        protection_days=90,
        extension_days=30,
        discount_percent=Decimal("5"),
        benefits_note="Partner discount, quarterly pipeline review.",
    ),
    TierValues(
        code="gold",
        name="Gold",
        name_zh="金牌",
        rank=2,
        min_covered_accounts=30,
        min_conversions=5,
        min_sourced_revenue=Decimal("50000"),
        min_satisfaction=Decimal("3.20"),
        min_certifications=2,
        protection_days=120,
        extension_days=45,
        auto_approve=True,
        discount_percent=Decimal("10"),
        benefits_note="Registrations approved automatically, co-marketing funds.",
    ),
    TierValues(
        code="platinum",
        name="Platinum",
        name_zh="白金",
        rank=3,
        min_covered_accounts=80,
        min_conversions=15,
        min_sourced_revenue=Decimal("250000"),
        min_registrations_won=1,
        min_satisfaction=Decimal("3.50"),
        min_nps=0,
        min_certifications=3,
        protection_days=180,
        extension_days=60,
        auto_approve=True,
        discount_percent=Decimal("15"),
        benefits_note="A dedicated channel manager, market development funds, early access.",
    ),
)
SURVEY_CATEGORIES = [
    FeedbackCategory.PRODUCT,
    FeedbackCategory.SUPPORT,
    FeedbackCategory.PRICING,
    FeedbackCategory.ENABLEMENT,
    FeedbackCategory.SALES_PROCESS,
]
CERTIFICATIONS = [
    "Solution architect",
    "Sales professional",
    "Fine-tuning specialist",
    "Deployment engineer",
    "Responsible AI practitioner",
]


def demo_programme_tiers() -> None:
    """Give the programme the demo's tiers (their requirements and benefits), creating or
    updating them; idempotent."""
    with transaction.atomic():
        for values in DEMO_TIERS:
            tier = Tier.objects.filter(code=values.code).first()
            if tier is None:
                tier_create(values=values)
            else:
                tier_update(tier=tier, values=values)
        programme_settings_set(downgrade_grace_weeks=4)


def demo_programme(*, today: date, seed: int, say: Callable[[str], None] | None = None) -> None:
    """Seed the demo's certifications, targets, past survey wave and business review, unless
    targets exist already."""
    if Target.objects.exists() or not Partner.objects.exists():
        return
    rng = random.Random(seed + 19)
    last_email = OutboundEmail.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    with transaction.atomic():
        demo_programme_tiers()
        partners = list(Partner.objects.order_by("external_id"))
        _certifications(rng, partners, today)
        _targets(rng, partners, today)
        answered = _survey_wave(rng, partners, today)
        _business_review(partners, today)
        # The demo's past is not news: nobody is e-mailed about it.
        OutboundEmail.objects.filter(pk__gt=last_email).delete()
    if say:
        say(f"programme: tiers, certifications, targets, a survey wave with {answered} answers")


def _certifications(rng: random.Random, partners: list[Partner], today: date) -> None:
    for partner in partners:
        for _ in range(rng.choice([0, 1, 2, 2, 3, 4, 5, 6])):
            earned = today - timedelta(days=rng.randint(0, 420))
            expires = earned + timedelta(days=730) if rng.random() < 0.7 else None
            if rng.random() < 0.15:
                expires = earned + timedelta(days=rng.randint(60, 300))
            certification_add(
                partner=partner,
                name=rng.choice(CERTIFICATIONS),
                holder=rng.choice(["Anna", "Wang Lei", "Kenji", "Laura", "Raj", "Chloe"]),
                earned_on=earned,
                expires_on=expires,
            )


def _targets(rng: random.Random, partners: list[Partner], today: date) -> None:
    covering = dict(
        CoverageAssignment.objects.filter(partner__isnull=False)
        .values("partner_id")
        .annotate(n=Count("account_id", distinct=True))
        .values_list("partner_id", "n")
    )
    for year in (today.year - 1, today.year):
        for partner in partners:
            base = covering.get(partner.pk, 20)
            target_set(
                year=year,
                partner=partner,
                accounts_covered=max(10, round(base * rng.uniform(0.5, 0.9) / 5) * 5),
                conversions=max(2, round(base * rng.uniform(0.04, 0.1))),
                revenue=None
                if rng.random() < 0.5
                else Decimal(rng.choice([250_000, 500_000, 1_000_000])),
            )
        rep_covering = dict(
            CoverageAssignment.objects.filter(rep__isnull=False)
            .values("rep_id")
            .annotate(n=Count("account_id", distinct=True))
            .values_list("rep_id", "n")
        )
        for rep in SalesRep.objects.order_by("external_id"):
            base = rep_covering.get(rep.pk, 20)
            target_set(
                year=year,
                rep=rep,
                accounts_covered=max(10, round(base * rng.uniform(0.5, 0.9) / 5) * 5),
                conversions=max(2, round(base * rng.uniform(0.05, 0.12))),
                revenue=Decimal(rng.choice([400_000, 750_000, 1_500_000])),
            )


def _at(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def _survey_wave(rng: random.Random, partners: list[Partner], today: date) -> int:
    manager = get_user_model().objects.filter(groups__name=Role.SALES_MANAGER).first()
    survey = survey_create(
        values=SurveyValues(
            name="Quarterly partner pulse",
            categories=[str(c) for c in SURVEY_CATEGORIES],
            intro="Five ratings and one question: it shapes what we fix next quarter.",
            free_text_question="What is the one thing we should do better?",
        ),
        by=manager,
    )
    opens_on = today - timedelta(days=70)
    wave = survey_wave_open(survey=survey, opens_on=opens_on).wave
    # A partner answers more readily, and more warmly, when we answer it fast and it is in a
    # higher tier: the drivers chart has something to find.
    rank = dict(Tier.objects.values_list("code", "rank"))
    slow = {
        partner_id
        for partner_id, replies in Feedback.objects.values("partner_id")
        .annotate(n=Count("replies"))
        .values_list("partner_id", "n")
        if replies == 0
    }
    answered = 0
    for invitation in SurveyInvitation.objects.filter(wave=wave).select_related("partner"):
        if rng.random() > 0.62:
            continue
        partner = invitation.partner
        mood = 3.1 + 0.3 * rank.get(partner.tier, 0) - (0.6 if partner.pk in slow else 0)
        if partner.channel_kind == PartnerKind.DISTRIBUTION:
            mood -= 0.3
        scores = {
            str(category): min(5, max(1, round(rng.gauss(mood + offset, 0.7))))
            for category, offset in zip(SURVEY_CATEGORIES, [0.2, 0.0, -0.6, 0.1, -0.3], strict=True)
            if rng.random() < 0.9
        } or {str(FeedbackCategory.PRODUCT): 3}
        nps = min(10, max(0, round(2 * mood + rng.gauss(0, 1.6))))
        comment = rng.choice(
            [
                "",
                "",
                "Faster answers on pricing exceptions, please.",
                "The enablement sessions were excellent.",
                "Deal registration conflicts with the direct team still cost us deals.",
            ]
        )
        response = survey_response_submit(
            invitation=invitation,
            answer=SurveyAnswer(scores=scores, nps=nps, comment=comment),
            language="en",
        )
        when = _at(opens_on + timedelta(days=rng.randint(0, 18)), 11)
        SurveyResponse.objects.filter(pk=response.pk).update(created_at=when, updated_at=when)
        SurveyInvitation.objects.filter(pk=invitation.pk).update(responded_at=when)
        Feedback.objects.filter(survey_response=response).update(created_at=when, updated_at=when)
        answered += 1
    reminder = _at(wave.closes_on - timedelta(days=survey.reminder_days_before_close), 9)
    wave.invitations.filter(responded_at__isnull=True).update(reminded_at=reminder)
    type(wave).objects.filter(pk=wave.pk).update(sent_at=_at(opens_on, 8), reminded_at=reminder)
    Survey.objects.filter(pk=survey.pk).update(created_at=_at(opens_on - timedelta(days=3), 9))
    return answered


def _business_review(partners: list[Partner], today: date) -> None:
    User = get_user_model()
    manager = User.objects.filter(groups__name=Role.SALES_MANAGER).order_by("pk").first()
    partner = next((p for p in partners if p.channel_kind == PartnerKind.PARTNER), None)
    if manager is None or partner is None:
        return
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last_quarter_day = quarter_start - timedelta(days=1)
    review = business_review_open(
        partner=partner,
        year=last_quarter_day.year,
        quarter=(last_quarter_day.month - 1) // 3 + 1,
        by=manager,
    )
    contact = partner.contacts.order_by("-is_primary", "name").first()
    business_review_record(
        review=review,
        held_on=last_quarter_day - timedelta(days=12),
        attendees=f"{manager.get_full_name() or manager.get_username()}; "
        f"{contact.name if contact else partner.name}",
        notes=(
            "Pipeline is healthy in East China; conversions lag in finance.\n"
            "They asked for faster answers on pricing exceptions and two more certified "
            "solution architects before the next review."
        ),
    )
    done = review_action_add(
        review=review,
        description="Send the updated pricing exception process",
        owner=manager,
        due_on=last_quarter_day - timedelta(days=5),
    )
    review_action_set_done(action=done, done=True)
    review_action_add(
        review=review,
        description="Book two solution-architect certification seats",
        partner_owner=contact.name if contact else partner.name,
        due_on=today + timedelta(days=20),
    )
    review_action_add(
        review=review,
        description="Joint account plan for the top ten finance accounts",
        owner=manager,
        due_on=today + timedelta(days=10),
    )
    BusinessReview.objects.filter(pk=review.pk).update(
        created_at=_at(last_quarter_day - timedelta(days=12), 16)
    )
    # The partner replied to a survey comment: a thread for the inbox.
    first = Feedback.objects.filter(partner=partner, source="survey", status="new").first()
    if first is not None:
        FeedbackReply.objects.create(
            feedback=first, author=manager, body="Thank you — we discussed this in the review."
        )
