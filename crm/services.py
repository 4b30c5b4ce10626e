"""Writes of the market core, the e-mail outbox every app uses, and API tokens."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_backends, get_user_model
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _

from crm.enqueue import task_enqueue
from crm.limits import RateLimited
from crm.models import ApiToken, OutboundEmail, PasswordResetRequest, SubmissionKey
from crm.observability import audit

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


def email_queue(
    *, to: Sequence[str], subject: str, body_text: str, body_html: str = "", topic: str = ""
) -> OutboundEmail | None:
    """Write an e-mail to the outbox and send it once the surrounding transaction commits.

    Returns None when there is nobody to send to. The row is the promise: if the broker is
    unreachable the e-mail waits for `outbound_emails_flush`.
    """
    recipients = sorted({address for address in to if address})
    if not recipients:
        return None
    email = OutboundEmail.objects.create(
        to=recipients, subject=subject[:255], body_text=body_text, body_html=body_html, topic=topic
    )
    transaction.on_commit(lambda: _enqueue(email.pk))
    return email


def _enqueue(email_id: int) -> None:
    try:
        task_enqueue("crm.outbound_email_send", email_id)
    except Exception as error:  # noqa: BLE001 - any broker failure: the flush job delivers it later
        logger.warning("outbox: e-mail %s stays pending, broker unavailable: %s", email_id, error)


# A claimed e-mail whose sender died is taken over after this long; well above EMAIL_TIMEOUT.
SEND_CLAIM = timedelta(minutes=10)


def outbound_email_send(*, email_id: int) -> bool:
    """Send one pending e-mail; True when sent now, False when already sent or taken, or when
    the mail server refused (the error is recorded and it stays pending, up to MAX_ATTEMPTS).

    No transaction is open while the mail server talks: the row is claimed in one short
    statement (two senders never both claim it), the message goes out, and the outcome is
    written in another. A slow or silent mail server so holds no lock and delays no other
    write. A claim left by a sender that died is taken over after SEND_CLAIM, so the e-mail
    may then go out twice rather than never.
    """
    now = timezone.now()
    claimable = Q(status=OutboundEmail.Status.PENDING) | Q(
        status=OutboundEmail.Status.SENDING, claimed_until__lt=now
    )
    claimed = OutboundEmail.objects.filter(claimable, pk=email_id).update(
        status=OutboundEmail.Status.SENDING,
        claimed_until=now + SEND_CLAIM,
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    if not claimed:
        return False
    email = OutboundEmail.objects.get(pk=email_id)
    message = EmailMultiAlternatives(
        subject=email.subject,
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=list(email.to),
    )
    if email.body_html:
        message.attach_alternative(email.body_html, "text/html")
    mine = OutboundEmail.objects.filter(pk=email_id, status=OutboundEmail.Status.SENDING)
    try:
        message.send()
    except Exception as error:  # noqa: BLE001 - SMTP, DNS and socket errors alike
        gave_up = email.attempts >= MAX_ATTEMPTS
        mine.update(
            status=OutboundEmail.Status.FAILED if gave_up else OutboundEmail.Status.PENDING,
            claimed_until=None,
            last_error=str(error)[:2000],
            updated_at=timezone.now(),
        )
        logger.warning(
            "outbox: e-mail %s not sent (attempt %s): %s", email.pk, email.attempts, error
        )
        return False
    mine.update(
        status=OutboundEmail.Status.SENT,
        sent_at=timezone.now(),
        claimed_until=None,
        last_error="",
        updated_at=timezone.now(),
    )
    return True


def outbound_emails_flush(*, limit: int = 500) -> int:
    """Write the e-mails of password-reset requests still waiting, then send pending e-mails
    (and those whose sender died mid-send), oldest first; returns how many were sent."""
    password_resets_process()
    pending = OutboundEmail.objects.filter(
        Q(status=OutboundEmail.Status.PENDING)
        | Q(status=OutboundEmail.Status.SENDING, claimed_until__lt=timezone.now())
    ).order_by("created_at")
    return sum(
        outbound_email_send(email_id=pk) for pk in pending.values_list("pk", flat=True)[:limit]
    )


# API tokens --------------------------------------------------------------------------------------

API_TOKENS_PER_USER = 20
# A token's last use is written at most this often: not on every request.
TOKEN_TOUCH_SECONDS = 300


class ApiTokenRefused(Exception):
    """The key does not authenticate anyone; the message says why and what to do."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _password_fingerprint_matches(user: User, fingerprint: str) -> bool:
    # As Django checks a session: the current secret key, or one it replaced.
    candidates = [user.get_session_auth_hash()] + [
        # A private method of AbstractBaseUser that django-stubs does not declare.
        user._get_session_auth_hash(secret=secret)  # type: ignore[attr-defined]
        for secret in settings.SECRET_KEY_FALLBACKS
    ]
    return any(constant_time_compare(fingerprint, candidate) for candidate in candidates)


def _may_sign_in(user: User) -> bool:
    """What every authentication backend requires of a user: active, and (partners.auth)
    not a deactivated partner's user."""
    return all(
        backend.user_can_authenticate(user)
        for backend in get_backends()
        if hasattr(backend, "user_can_authenticate")
    )


@transaction.atomic
def api_token_issue(*, user: User, request: HttpRequest | None = None) -> tuple[ApiToken, str]:
    """A new token for `user`, who has just given their password; returns it with its key,
    which is not stored anywhere. A user keeps at most API_TOKENS_PER_USER tokens: one more
    deletes the least recently used."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        digest=_digest(key),
        prefix=key[:8],
        password_fingerprint=user.get_session_auth_hash(),
        last_used_at=timezone.now(),
    )
    surplus = ApiToken.objects.filter(user=user).order_by("-last_used_at", "-id")[
        API_TOKENS_PER_USER:
    ]
    ApiToken.objects.filter(pk__in=list(surplus.values_list("pk", flat=True))).delete()
    audit("token_issued", request=request, user=user)
    return token, key


def api_token_authenticate(*, key: str, now: datetime | None = None) -> ApiToken:
    """The token whose key is `key`, its use recorded. Raises ApiTokenRefused for an unknown
    or revoked key, a user who may no longer sign in, a password changed since the token was
    issued, or a token unused for settings.API_TOKEN_IDLE_DAYS."""
    now = now or timezone.now()
    token = ApiToken.objects.select_related("user").filter(digest=_digest(key)).first()
    if token is None:
        raise ApiTokenRefused("Invalid token.")
    if not _may_sign_in(token.user):
        raise ApiTokenRefused("This user may no longer sign in.")
    if not _password_fingerprint_matches(token.user, token.password_fingerprint):
        raise ApiTokenRefused(
            "This token ended when the password changed; request a new one with the new password."
        )
    idle_days = settings.API_TOKEN_IDLE_DAYS
    if token.last_used_at < now - timedelta(days=idle_days):
        raise ApiTokenRefused(
            f"This token expired after {idle_days} days unused; request a new one."
        )
    if (now - token.last_used_at).total_seconds() > TOKEN_TOUCH_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


@transaction.atomic
def api_token_revoke(*, token: ApiToken, by: User, request: HttpRequest | None = None) -> None:
    """Revoke one token (its user, or a sales manager, decides; the caller checks who may)."""
    audit("token_revoked", request=request, user=by, username=token.user.get_username())
    token.delete()


@transaction.atomic
def api_tokens_revoke_all(*, user: User, by: User, request: HttpRequest | None = None) -> int:
    """Revoke every token of `user`; returns how many there were."""
    count, _ = ApiToken.objects.filter(user=user).delete()
    if count:
        audit("token_revoked", request=request, user=by, username=user.get_username())
    return count


def api_tokens_purge(*, now: datetime | None = None) -> int:
    """Delete tokens unused for longer than settings.API_TOKEN_IDLE_DAYS (they no longer
    work); returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.API_TOKEN_IDLE_DAYS)
    count, _ = ApiToken.objects.filter(last_used_at__lt=cutoff).delete()
    return count


# Password resets ---------------------------------------------------------------------------------

PASSWORD_RESETS_PER_ADDRESS = 3
PASSWORD_RESETS_PER_CLIENT = 10


def _hour_window(
    requests: QuerySet[PasswordResetRequest], *, now: datetime, limit: int
) -> float | None:
    """Seconds until one more request is allowed, or None when under `limit` in the hour."""
    recent = list(
        requests.filter(created_at__gt=now - timedelta(hours=1))
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return None
    return (recent[-1] + timedelta(hours=1) - now).total_seconds()


@transaction.atomic
def password_reset_request(
    *, email: str, client_address: str | None, language: str = "", now: datetime | None = None
) -> PasswordResetRequest:
    """Queue a password-reset e-mail to `email`, if it belongs to anyone.

    Does the same work for every address (nothing is looked up here; `password_reset_send`
    does it on a worker), so a known and an unknown address answer alike and in the same
    time; the e-mail is written in `language` (a language code). Raises RateLimited past
    PASSWORD_RESETS_PER_ADDRESS requests for one address or PASSWORD_RESETS_PER_CLIENT from
    one client address in an hour.
    """
    now = now or timezone.now()
    address = email.strip().lower()
    waits = [
        _hour_window(
            PasswordResetRequest.objects.filter(email=address),
            now=now,
            limit=PASSWORD_RESETS_PER_ADDRESS,
        ),
        _hour_window(
            PasswordResetRequest.objects.filter(ip_address=client_address),
            now=now,
            limit=PASSWORD_RESETS_PER_CLIENT,
        )
        if client_address
        else None,
    ]
    wait = max((seconds for seconds in waits if seconds is not None), default=None)
    if wait is not None:
        raise RateLimited(
            _("Too many password-reset requests; try again in %(minutes)s minutes.")
            % {"minutes": max(1, round(wait / 60))},
            retry_after=wait,
        )
    reset = PasswordResetRequest.objects.create(
        email=address, ip_address=client_address, language=language[:16]
    )
    transaction.on_commit(lambda: _enqueue_password_reset(reset.pk))
    return reset


def _enqueue_password_reset(request_id: int) -> None:
    try:
        task_enqueue("crm.password_reset_send", request_id)
    except Exception as error:  # noqa: BLE001 - any broker failure: the flush job writes it
        logger.warning("password reset %s waits, broker unavailable: %s", request_id, error)


def password_reset_send(*, request_id: int) -> int:
    """Write a reset e-mail to the outbox for each user who may sign in and has a password,
    with the request's address; returns how many. Each request is handled once."""
    now = timezone.now()
    if not PasswordResetRequest.objects.filter(pk=request_id, processed_at__isnull=True).update(
        processed_at=now
    ):
        return 0
    address, language = PasswordResetRequest.objects.values_list("email", "language").get(
        pk=request_id
    )
    users = [
        user
        for user in get_user_model().objects.filter(email__iexact=address, is_active=True)
        if user.has_usable_password() and _may_sign_in(user)
    ]
    for user in users:
        link = settings.SITE_URL.rstrip("/") + reverse(
            "password_reset_confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        context = {"user": user, "link": link, "days": settings.PASSWORD_RESET_TIMEOUT // 86400}
        with translation.override(language or settings.LANGUAGE_CODE):
            email_queue(
                to=[user.email],
                subject=_("Reset your Channel CRM password"),
                body_text=render_to_string("emails/password_reset.txt", context),
                topic="password-reset",
            )
    return len(users)


def password_resets_process() -> int:
    """Handle the password-reset requests still waiting (the broker was down); returns how
    many e-mails were written."""
    waiting = PasswordResetRequest.objects.filter(processed_at__isnull=True).order_by("created_at")
    return sum(
        password_reset_send(request_id=pk) for pk in waiting.values_list("pk", flat=True)[:500]
    )


# Housekeeping ------------------------------------------------------------------------------------

SUBMISSION_KEYS_KEPT = timedelta(days=2)
PASSWORD_RESETS_KEPT = timedelta(days=2)


def housekeeping(*, now: datetime | None = None) -> dict[str, int]:
    """Delete what no longer serves: API tokens past their idle time, submission keys older
    than SUBMISSION_KEYS_KEPT (a retry comes within minutes), and handled password-reset
    requests older than PASSWORD_RESETS_KEPT (the rate limits look back one hour). Returns
    how many of each."""
    now = now or timezone.now()
    keys, _ = SubmissionKey.objects.filter(created_at__lt=now - SUBMISSION_KEYS_KEPT).delete()
    resets, _ = PasswordResetRequest.objects.filter(
        processed_at__isnull=False, created_at__lt=now - PASSWORD_RESETS_KEPT
    ).delete()
    return {
        "api_tokens": api_tokens_purge(now=now),
        "submission_keys": keys,
        "password_resets": resets,
    }
