"""Serializer fields shared by the API's inputs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class KeyRelatedField(serializers.SlugRelatedField[Any]):
    """A related object named by a key (an external id, a code). A key holding a NUL character
    is answered as an invalid value: PostgreSQL text cannot hold one, so looking it up would
    fail in the database instead of naming the field."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and "\x00" in data:
            self.fail("invalid")
        return super().to_internal_value(data)
