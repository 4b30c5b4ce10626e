"""Sent twice, done once.

Forms: every create form carries a one-time token (`{% submission_token %}`); the view's
decorator `once_per_form_token` claims it in the same transaction as the write. API:
`Idempotency-Key` on a POST, through `once_per_idempotency_key`. Either way the claim is a
row with a unique (user, key): a second submission, one after the other or at the same
moment, waits for the first to commit and then answers as the first did. A refused write
(form errors, a 4xx) rolls its claim back, so the same token or key can be sent again.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from crm.models import SubmissionKey
from crm.roles import signed_in_user

FORM_FIELD = "submission_token"
_FORM_TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
API_HEADER = "Idempotency-Key"
API_KEY_MAX = 200


def new_form_token() -> str:
    return secrets.token_urlsafe(24)


def form_token_of(request: HttpRequest) -> str | None:
    """The well-formed token a POST carries, else None."""
    token = request.POST.get(FORM_FIELD, "") if request.method == "POST" else ""
    return token if _FORM_TOKEN.match(token) else None


def _claim(user: User, key: str, fingerprint: str = "") -> SubmissionKey | None:
    """The new claim of `key`, or None when it was claimed (and committed) before."""
    try:
        with transaction.atomic():
            return SubmissionKey.objects.create(user=user, key=key, fingerprint=fingerprint)
    except IntegrityError:
        return None


def _refused_with_a_message(request: HttpRequest) -> bool:
    # Views that redirect after refusing say so with an error message; only the queued ones of
    # this request count (the storage keeps them in `_queued_messages` until the response).
    queued = getattr(getattr(request, "_messages", None), "_queued_messages", [])
    return any(message.level >= messages.ERROR for message in queued)


def once_per_form_token(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Do a form's POST once per token: a repeat is sent where the first one went, with a
    note that it was already done. Only a redirect without an error message counts as done;
    anything else (the form shown again with its errors) rolls back and frees the token.
    A POST without a token (no browser sends one) is handled as before."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        token = form_token_of(request)
        if token is None or not request.user.is_authenticated:
            return view(request, *args, **kwargs)
        with transaction.atomic():
            claim = _claim(request.user, f"form:{token}")
            if claim is None:
                done = SubmissionKey.objects.get(user=request.user, key=f"form:{token}")
                messages.info(request, _("This was already sent; it was saved once."))
                return redirect(done.answer.get("location") or request.path)
            response = view(request, *args, **kwargs)
            if response.status_code in (301, 302, 303) and not _refused_with_a_message(request):
                claim.status_code = response.status_code
                claim.answer = {"location": response["Location"]}
                claim.save(update_fields=["status_code", "answer"])
            else:
                transaction.set_rollback(True)
            return response

    return wrapped


def _fingerprint(request: Request) -> str:
    def plain(value: Any) -> Any:
        if isinstance(value, UploadedFile):
            return {"file": value.name, "size": value.size}
        return value

    data = request.data
    items = (
        {key: [plain(v) for v in data.getlist(key)] for key in data}
        if hasattr(data, "getlist")
        else data
    )
    asked = json.dumps([request.method, request.path, items], sort_keys=True, default=str)
    return hashlib.sha256(asked.encode()).hexdigest()


def once_per_idempotency_key(handler: Callable[..., Response]) -> Callable[..., Response]:
    """An API POST with `Idempotency-Key: <key>` is done once per caller and key: a repeat
    gets the first answer again (`Idempotent-Replayed: true`), the same key with another
    request a 422. Only a 2xx answer counts as done; a refusal frees the key."""

    @wraps(handler)
    def wrapped(view: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(API_HEADER)
        if request.method != "POST" or key is None:
            return handler(view, request, *args, **kwargs)
        if not 0 < len(key) <= API_KEY_MAX or not key.isprintable():
            raise exceptions.ValidationError(
                {API_HEADER: [f"Send 1 to {API_KEY_MAX} printable characters."]}
            )
        # The view's permission check has run before its handler: the caller is signed in.
        user = signed_in_user(request.user)
        fingerprint = _fingerprint(request)
        with transaction.atomic():
            claim = _claim(user, f"api:{key}", fingerprint)
            if claim is None:
                done = SubmissionKey.objects.get(user=user, key=f"api:{key}")
                if done.fingerprint != fingerprint:
                    return Response(
                        {"detail": f"This {API_HEADER} was used for another request."},
                        status=422,
                    )
                return Response(
                    done.answer, status=done.status_code, headers={"Idempotent-Replayed": "true"}
                )
            response = handler(view, request, *args, **kwargs)
            if 200 <= response.status_code < 300:
                claim.status_code = response.status_code
                claim.answer = json.loads(JSONRenderer().render(response.data) or b"null")
                claim.save(update_fields=["status_code", "answer"])
            else:
                transaction.set_rollback(True)
            return response

    return wrapped
