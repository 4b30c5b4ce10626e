"""The one Celery beat schedule (wired in `crm/celery.py`). Times are in settings.TIME_ZONE.

Each entry expires close to its interval, so runs missed while workers were down do not pile
up and replay at once.
"""

from __future__ import annotations

from typing import TypedDict

from celery.schedules import crontab

HOUR = 3600


class BeatOptions(TypedDict):
    expires: int


class BeatEntry(TypedDict):
    """One job of the schedule, as Celery beat reads it."""

    task: str
    schedule: crontab
    options: BeatOptions


BEAT_SCHEDULE: dict[str, BeatEntry] = {
    # Monday early: close last week as final, after the nightly refresh has finished.
    "metrics-close-last-week": {
        "task": "analytics.close_last_week",
        "schedule": crontab(minute=30, hour=2, day_of_week="mon"),
        "options": {"expires": 20 * HOUR},
    },
    # Nightly: refresh the current week as provisional, so dashboards are at most a day old.
    "metrics-refresh-current-week": {
        "task": "analytics.refresh_current_week",
        "schedule": crontab(minute=0, hour=1),
        "options": {"expires": 20 * HOUR},
    },
    # Daily, just after midnight: mark active agreements past their end date expired.
    "agreements-expire": {
        "task": "partners.agreements_expire",
        "schedule": crontab(minute=10, hour=0),
        "options": {"expires": 20 * HOUR},
    },
    # Hourly: store the coverage kinds of accounts whose stored kinds lapsed (a day passed
    # the last one they held on) or were marked not known; the lists test those accounts'
    # assignments until then, so this keeps them fast, not exact.
    "coverage-kinds-refresh": {
        "task": "partners.coverage_kinds_refresh",
        "schedule": crontab(minute=5),
        "options": {"expires": HOUR},
    },
    # Monday morning, after the 02:30 close: e-mail last week's digest to the executives.
    "leadership-digest": {
        "task": "analytics.send_weekly_digest",
        "schedule": crontab(minute=0, hour=7, day_of_week="mon"),
        "options": {"expires": 12 * HOUR},
    },
    # Daily: forget the logs of changed accounts, coverage and opportunities older than a week
    # and a day (a worker whose rows were read before then reads them all again at its next run).
    "change-logs-prune": {
        "task": "channels.change_logs_prune",
        "schedule": crontab(minute=40, hour=3),
        "options": {"expires": 20 * HOUR},
    },
    # Daily: delete API tokens past their idle time, old submission keys and reset requests.
    "crm-housekeeping": {
        "task": "crm.housekeeping",
        "schedule": crontab(minute=20, hour=3),
        "options": {"expires": 20 * HOUR},
    },
    # Daily, after the agreements: expire deal registrations past their protection and warn
    # partners whose protection ends within 14 days.
    "registrations-daily": {
        "task": "partners.registrations_daily",
        "schedule": crontab(minute=20, hour=0),
        "options": {"expires": 20 * HOUR},
    },
    # Daily, mid-morning: open the survey waves due on their schedule and send the reminders
    # due (once per wave), all through the outbox.
    "surveys-daily": {
        "task": "partners.surveys_daily",
        "schedule": crontab(minute=0, hour=9),
        "options": {"expires": 20 * HOUR},
    },
    # Every five minutes: queue webhook deliveries whose retry is due (or that the broker missed).
    "webhooks-flush": {
        "task": "partners.webhook_deliveries_flush",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    # Every five minutes: send e-mails still waiting in the outbox (broker or mail server was down).
    "outbox-flush": {
        "task": "crm.outbound_emails_flush",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
}
