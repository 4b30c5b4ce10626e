"""`Authorization: Token <key>` against crm.models.ApiToken; crm.services decides which keys
work. A module of its own: DRF imports it while loading its settings, before its views exist."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from crm.models import ApiToken
from crm.services import ApiTokenRefused, api_token_authenticate

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        try:
            token = api_token_authenticate(key=key)
        except ApiTokenRefused as refusal:
            raise exceptions.AuthenticationFailed(str(refusal)) from None
        return token.user, token
