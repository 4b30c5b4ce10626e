"""Quarterly business reviews with partners: the meeting's record and its agreed actions.

Every function is keyword-only, validates with `full_clean()` and raises ValidationError with a
message a sales manager can act on; nothing is half saved. The scorecard a review discusses and
the summary e-mailed to the partner are built in `analytics.review_summary` (they read the
weekly snapshots).
"""

from __future__ import annotations

from datetime import date

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.roles import is_internal
from partners.models import Partner
from partners.programme_models import BusinessReview, ReviewAction


@transaction.atomic
def business_review_open(*, partner: Partner, year: int, quarter: int, by: User) -> BusinessReview:
    """The review of `partner` for a quarter, created on first use (one per partner and
    quarter, held by the database). Raises ValidationError for a quarter outside 1-4 or a year
    outside 2000-2199."""
    review = BusinessReview.objects.filter(partner=partner, year=year, quarter=quarter).first()
    if review is not None:
        return review
    review = BusinessReview(partner=partner, year=year, quarter=quarter, created_by=by)
    review.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            review.save()
    except IntegrityError:
        # Opened by someone else a moment ago: that one is the review.
        return BusinessReview.objects.get(partner=partner, year=year, quarter=quarter)
    return review


@transaction.atomic
def business_review_record(
    *, review: BusinessReview, held_on: date | None, attendees: str, notes: str
) -> BusinessReview:
    """Record the meeting: when it was held, who attended and the notes. Raises
    ValidationError for an over-long text or a date out of range."""
    locked = BusinessReview.objects.select_for_update().get(pk=review.pk)
    locked.held_on = held_on
    locked.attendees = attendees.strip()
    locked.notes = notes.strip()
    locked.full_clean()
    locked.save()
    return locked


@transaction.atomic
def review_action_add(
    *,
    review: BusinessReview,
    description: str,
    due_on: date,
    owner: User | None = None,
    partner_owner: str = "",
) -> ReviewAction:
    """Add an agreed action with one owner, one of our users or someone at the partner by
    name, and a due date. Raises ValidationError for no description, no owner or two, or an
    owner who is not one of our users."""
    if owner is not None and not is_internal(owner):
        raise ValidationError({"owner": _("Choose one of our users, or name the partner's owner.")})
    action = ReviewAction(
        review=review,
        description=description.strip(),
        owner=owner,
        partner_owner=partner_owner.strip() if owner is None else "",
        due_on=due_on,
    )
    action.full_clean()
    action.save()
    return action


@transaction.atomic
def review_action_set_done(*, action: ReviewAction, done: bool) -> ReviewAction:
    """Mark an action done today, or open again."""
    locked = ReviewAction.objects.select_for_update().get(pk=action.pk)
    locked.done_on = timezone.localdate() if done else None
    locked.save(update_fields=["done_on", "updated_at"])
    return locked


@transaction.atomic
def business_review_mark_sent(*, review: BusinessReview) -> BusinessReview:
    """Note that the review's summary went to the partner's contacts (now)."""
    locked = BusinessReview.objects.select_for_update().get(pk=review.pk)
    locked.summary_sent_at = timezone.now()
    locked.save(update_fields=["summary_sent_at", "updated_at"])
    return locked
