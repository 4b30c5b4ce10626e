"""Reference data of the market core (regions and verticals, read only), and the offline
viewers of the API schema."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpResponse
from django.template import Context, Template
from django.templatetags.static import static
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerSplitView,
)
from rest_framework import filters, viewsets
from rest_framework.request import Request

from crm.api.permissions import InternalOnlyDocs, InternalReadManagerWrite
from crm.api.serializers import RegionSerializer, VerticalSerializer
from crm.models import Region, Vertical
from crm.selectors import regions_all, verticals_all


class RegionViewSet(viewsets.ReadOnlyModelViewSet[Region]):
    serializer_class = RegionSerializer
    permission_classes = [InternalReadManagerWrite]
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Region]:
        return regions_all().select_related("parent")


class VerticalViewSet(viewsets.ReadOnlyModelViewSet[Vertical]):
    serializer_class = VerticalSerializer
    permission_classes = [InternalReadManagerWrite]
    filter_backends = [filters.SearchFilter, filters.OrderingFilter]
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name"]
    ordering = ["name"]

    def get_queryset(self) -> QuerySet[Vertical]:
        return verticals_all()


# The viewers: drf-spectacular's Redoc page loads web fonts from Google and inlines a script,
# which the app's Content-Security-Policy (and "nothing fetched at run time") rule out. This
# page has only the sidecar's own script.
REDOC_PAGE = Template(
    """<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{ title }}</title>
    <link rel="icon" href="{{ favicon }}" type="image/svg+xml">
  </head>
  <body>
    <redoc spec-url="{{ schema_url }}"></redoc>
    <script src="{{ offline }}"></script>
    <script src="{{ redoc_standalone }}"></script>
  </body>
</html>
"""
)


# Redoc styles its page with style elements it writes at run time (styled-components) and
# searches in a web worker started from a blob. This page alone allows both; scripts stay
# limited to the app's own files, like every other page.
REDOC_POLICY = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}


class OfflineRedocView(SpectacularRedocView):
    permission_classes = [InternalOnlyDocs]

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponse:
        # drf-spectacular's view helpers carry no annotations.
        context = {
            "title": self.title,
            "redoc_standalone": self._redoc_standalone(),  # type: ignore[no-untyped-call]
            "schema_url": self._get_schema_url(request),  # type: ignore[no-untyped-call]
            "offline": static("js/redoc-offline.js"),
            "favicon": static("favicon.svg"),
        }
        response = HttpResponse(REDOC_PAGE.render(Context(context)))
        response._csp_update = REDOC_POLICY  # type: ignore[attr-defined]  # as csp_update sets it
        return response


class SchemaView(SpectacularAPIView):
    """The OpenAPI schema, as JSON unless asked otherwise (`?format=yaml`, or an Accept header
    naming YAML): a browser shows plain JSON instead of downloading a YAML file."""

    permission_classes = [InternalOnlyDocs]
    renderer_classes = [
        OpenApiJsonRenderer2,
        OpenApiJsonRenderer,
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
    ]


class OfflineSwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI with its start-up script served as a file of its own (no inline script)."""

    permission_classes = [InternalOnlyDocs]
