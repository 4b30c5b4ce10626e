"""How the dashboard shows a figure (`analytics.dashboard`'s `show_*`), as template filters:
`{{ value|as_ratio }}`, `{{ h.value|as_figure:h.kind }}`, `{{ h.change|as_change:h.kind }}` and
the colour of a change, `{{ h.change|tone:h.better }}`; the dashboard's own links,
`{% dashboard_query filters heat="penetration" %}`, and a white-space segment's accounts,
`{{ row|white_space_url:week.as_of }}`."""

from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django import template

from analytics import dashboard as board
from partners.coverage_views import white_space_url as segment_white_space_url

register = template.Library()

register.filter("as_count", board.show_count)
register.filter("as_ratio", board.show_ratio)
register.filter("as_score", board.show_score)
register.filter("as_nps", board.show_nps)
register.filter("as_figure", board.show_value)
register.filter("as_change", board.show_change)
register.filter("tone", board.change_tone)


@register.simple_tag
def dashboard_query(filters: board.Filters, **changes: object) -> str:
    """The query string of the dashboard's `filters`, with `changes`."""
    return urlencode(filters.query(**changes))


@register.filter
def white_space_url(segment: board.WhiteSpaceRow, as_of: date) -> str:
    """The account list of a segment's white space (`segment` has its `region`, `vertical` and
    `size_band` codes) on `as_of`: the accounts a snapshot of that day counted, as long as
    nobody changed that day's records since."""
    return segment_white_space_url(
        region=segment["region"],
        vertical=segment["vertical"],
        size_band=segment["size_band"],
        as_of=as_of,
    )
