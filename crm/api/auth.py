"""API tokens: POST /api/v1/auth/token/ with a username and password issues one; DELETE revokes
the one sending the request; /api/v1/auth/tokens/ lists and revokes them (a user's own, a
sales manager's of anyone). Send a token as `Authorization: Token <token>`."""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle
from rest_framework.views import APIView

from crm.models import ApiToken
from crm.roles import can_manage, signed_in_user
from crm.selectors import api_tokens_visible_to
from crm.services import api_token_issue, api_token_revoke


class IssuedTokenSerializer(serializers.Serializer[dict[str, object]]):
    token = serializers.CharField(read_only=True, help_text="Shown this once; keep it secret.")
    id = serializers.IntegerField(read_only=True)
    prefix = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    expires_after_days_unused = serializers.IntegerField(read_only=True)


class LockedOutSerializer(serializers.Serializer[dict[str, str]]):
    detail = serializers.CharField()


class TokenView(APIView):
    """Exchange a username and password for a new token (each call issues another), or revoke
    the token this request is sent with."""

    renderer_classes = [JSONRenderer]
    throttle_classes = [AnonRateThrottle, ScopedRateThrottle]
    throttle_scope = "auth"

    def get_permissions(self) -> list[BasePermission]:
        return [AllowAny()] if self.request.method == "POST" else [IsAuthenticated()]

    @extend_schema(
        request=AuthTokenSerializer,
        responses={
            200: IssuedTokenSerializer,
            400: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(
                LockedOutSerializer, description="Locked out after repeated failures."
            ),
        },
        auth=[],
        operation_id="auth_token_create",
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        if not credentials.is_valid():
            if getattr(request, "axes_locked_out", False):
                return self._locked_out()
            raise exceptions.ValidationError(credentials.errors)
        token, key = api_token_issue(user=credentials.validated_data["user"], request=request)
        return Response(
            IssuedTokenSerializer(
                {
                    "token": key,
                    "id": token.pk,
                    "prefix": token.prefix,
                    "created_at": token.created_at,
                    "expires_after_days_unused": settings.API_TOKEN_IDLE_DAYS,
                }
            ).data
        )

    @extend_schema(
        request=None,
        responses={204: None, 400: OpenApiResponse(description="Not sent with a token.")},
        operation_id="auth_token_destroy",
    )
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not isinstance(request.auth, ApiToken):
            raise exceptions.ValidationError(
                {"detail": ["Send this with the token to revoke (Authorization: Token ...)."]}
            )
        api_token_revoke(token=request.auth, by=signed_in_user(request.user), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @staticmethod
    def _locked_out() -> Response:
        seconds = int(settings.AXES_COOLOFF_TIME * 3600)
        return Response(
            {
                "detail": "Too many failed sign-ins from here for this user; "
                f"try again in {seconds // 60} minutes."
            },
            status=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(seconds)},
        )


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = ApiToken
        fields = ["id", "user", "username", "prefix", "created_at", "last_used_at"]
        read_only_fields = fields


def _token_owners(request: Request | None) -> QuerySet[User]:
    # Only users whose tokens the caller may see: another user's id answers like a missing one.
    users = User.objects.all()
    if request is None or not request.user.is_authenticated:
        return users.none()
    return users if can_manage(request.user) else users.filter(pk=request.user.pk)


class ApiTokenFilter(django_filters.FilterSet):
    user = django_filters.ModelChoiceFilter(queryset=_token_owners)

    class Meta:
        model = ApiToken
        fields = ["user"]


class ApiTokenViewSet(
    mixins.ListModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet[ApiToken]
):
    """The caller's API tokens (a sales manager's view: everyone's, `?user=` to narrow); DELETE
    revokes one at once. Keys are never shown again, only their first characters."""

    serializer_class = ApiTokenSerializer
    # For the schema generator, which has no user to ask the selector about.
    queryset = ApiToken.objects.none()
    filterset_class = ApiTokenFilter
    filter_backends = [django_filters.rest_framework.DjangoFilterBackend]

    def get_queryset(self) -> QuerySet[ApiToken]:
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        return api_tokens_visible_to(signed_in_user(self.request.user)).order_by(
            "-created_at", "-id"
        )

    def perform_destroy(self, instance: ApiToken) -> None:
        api_token_revoke(token=instance, by=signed_in_user(self.request.user), request=self.request)
