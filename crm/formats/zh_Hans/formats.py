"""Simplified Chinese: Django's dates ("2026年12月5日"); numbers grouped by thousands with
commas, as Chinese business documents write them, so a count reads the same on every page."""

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
