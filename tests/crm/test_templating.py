"""Jinja2 partials inside Django templates (crm.templating, `{% jinja %}`)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.template import Context, Template, engines
from django.utils import timezone, translation
from django.utils.translation.template import templatize

PARTIALS = sorted(Path(settings.BASE_DIR, "templates").rglob("*.jinja"))


def test_it_renders_a_partial_with_the_including_templates_context_escaped() -> None:
    page = Template(
        "{% load jinja %}<tbody>{% with page=entries %}"
        '{% jinja "partners/partials/feedback_rows.jinja" %}{% endwith %}</tbody>'
    )
    entry = SimpleNamespace(
        pk=3,
        created_at=datetime(2026, 12, 2, 23, 30, tzinfo=UTC),
        partner_id=7,
        partner=SimpleNamespace(name="<b>Tom & Co</b>"),
        subject='"Late" <script>',
        category="pricing",
        satisfaction=2,
        nps=None,
        status="open",
        assignee=None,
    )
    context = {"entries": [entry], "categories": [("pricing", "Pricing")], "statuses": []}
    with translation.override("en"), timezone.override("Asia/Shanghai"):
        shown = page.render(Context(context))
    cells = re.findall(r"<td>(.*?)</td>", shown)
    assert cells == [
        "3 Dec 2026",  # the moment in the reader's time zone, written the project's way
        '<a href="/workspace/partners/7/">&lt;b&gt;Tom &amp; Co&lt;/b&gt;</a>',
        '<a href="/workspace/feedback/3/">&#34;Late&#34; &lt;script&gt;</a>',
        "Pricing",
        "2/5",
        "—",
        "open",
        "—",
    ]


def test_it_writes_dates_money_and_labels_as_the_django_pages_do() -> None:
    partial = engines["jinja2"].from_string(
        "{{ day|date }} · {{ amount|money('EUR') }} · {{ code|label_in(kinds) }} · "
        '{{ url("partners:partner_detail", 7) }} · {{ _("Region") }}'
    )
    values = {"day": date(2026, 12, 5), "amount": 1250, "code": "online", "kinds": {"online": "On"}}
    with translation.override("en"):
        assert (
            partial.render(values)
            == "5 Dec 2026 · 1,250.00 EUR · On · /workspace/partners/7/ · Region"
        )
    with translation.override("zh-hans"):
        assert partial.render(values) == (
            "2026年12月5日 · 1,250.00 EUR · On · /workspace/partners/7/ · 区域"
        )


@pytest.mark.parametrize("partial", PARTIALS, ids=lambda path: path.name)
def test_every_text_a_partial_translates_is_in_the_chinese_catalogue(partial: Path) -> None:
    """makemessages (`-e html,txt,py,jinja`) reads `_("...")` in a partial as in a Django
    template; each one has a Chinese translation."""
    extracted = re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', templatize(partial.read_text()))
    with translation.override("zh-hans"):
        missing = [text for text in extracted if translation.gettext(text) == text]
    assert not missing, missing
