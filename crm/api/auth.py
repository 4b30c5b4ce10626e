"""POST /api/v1/auth/token/ with a username and password returns the user's API token."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle


class TokenSerializer(serializers.Serializer[dict[str, str]]):
    token = serializers.CharField(read_only=True)


class TokenView(ObtainAuthToken):
    """Exchange a username and password for the user's token (created on first use). Send it
    as `Authorization: Token <token>`."""

    renderer_classes = [JSONRenderer]
    throttle_classes = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    @extend_schema(
        request=ObtainAuthToken.serializer_class,
        responses={200: TokenSerializer},
        auth=[],
        operation_id="auth_token_create",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)
