"""The summary of a quarterly business review e-mailed to the partner's contacts: the scorecard
the review discussed (from the snapshots), the notes and the agreed actions, in English and
Simplified Chinese in one e-mail, through the outbox."""

from __future__ import annotations

from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _

from analytics.scorecard import Scorecard
from crm.services import email_queue
from partners.programme_models import BusinessReview
from partners.review_services import business_review_mark_sent

LANGUAGES = ("en", "zh-hans")


@transaction.atomic
def review_summary_send(*, review: BusinessReview, scorecard: Scorecard | None) -> list[str]:
    """Write the summary of `review` to the outbox, addressed to every contact of the partner
    with an e-mail address, and note when it was sent. Returns the addresses (none: nothing
    is sent)."""
    contacts = review.partner.contacts.exclude(email="")
    addresses = sorted(set(contacts.values_list("email", flat=True)))
    if not addresses:
        return []
    actions = list(review.actions.select_related("owner").order_by("due_on", "id"))
    context = {"review": review, "card": scorecard, "actions": actions}
    texts, subjects = [], []
    for language in LANGUAGES:
        with translation.override(language):
            texts.append(render_to_string("emails/review_summary.txt", context))
            subjects.append(
                _("Business review %(quarter)s: summary") % {"quarter": review.quarter_label}
            )
    email_queue(
        to=addresses,
        subject=f"{review.partner.name} · {' / '.join(subjects)}",
        body_text="\n\n———\n\n".join(texts),
        topic="business-review-summary",
    )
    business_review_mark_sent(review=review)
    return addresses
