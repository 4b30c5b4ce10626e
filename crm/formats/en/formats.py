"""English dates as "5 Dec 2026": day, month name, year, so no reader mistakes a US date for a
European one. Simplified Chinese keeps Django's own ("2026年12月5日"). Pages show every date
with the `date` filter's default (DATE_FORMAT) and every moment with DATETIME_FORMAT."""

DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y H:i"
SHORT_DATETIME_FORMAT = "j M Y H:i"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
FIRST_DAY_OF_WEEK = 1
DECIMAL_SEPARATOR = "."
THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
