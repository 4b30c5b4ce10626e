"""JSON for the API, with rows that were encoded once and kept.

A page of a few thousand report rows costs more to encode than to read, and the rows of a week's
snapshot never change once written. `encode_rows` turns each row into its JSON text exactly as
`JSONRenderer` would write it inside a list; `EncodedRowsJSONRenderer` writes a page whose
`results` are such texts (`EncodedRows`) by joining them into the envelope it renders as usual,
so the bytes sent are the bytes `JSONRenderer` gives for the same rows as dicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rest_framework.renderers import JSONRenderer

# The separators `JSONRenderer` writes compact JSON with.
_COMPACT = (",", ":")
_EMPTY_RESULTS_END = b"[]}"


class EncodedRows(list[bytes]):
    """A page of rows, each already encoded by `encode_rows`."""


def _escaped(text: str) -> str:
    # As `JSONRenderer`: U+2028 and U+2029 escaped, so the JSON is also JavaScript.
    if "\u2028" in text or "\u2029" in text:
        return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return text


def encode_rows(rows: Sequence[Mapping[str, object]]) -> list[bytes]:
    """Each row as the JSON text `JSONRenderer` writes for it in compact form: the same key
    order, numbers, escapes and `ensure_ascii`, `allow_nan` of the API's settings."""
    renderer = EncodedRowsJSONRenderer
    encoder = renderer.encoder_class(
        ensure_ascii=renderer.ensure_ascii,
        allow_nan=not renderer.strict,
        separators=_COMPACT,
    )
    return [_escaped(encoder.encode(row)).encode() for row in rows]


class EncodedRowsJSONRenderer(JSONRenderer):
    """`JSONRenderer`, which also writes a dict whose last key, `results`, holds `EncodedRows`:
    the rest is rendered as usual and the rows' texts are joined into it. Indented output (an
    `Accept: application/json; indent=4`) decodes the rows and renders them as any data."""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, EncodedRows):
            return self._render(data, accepted_media_type, renderer_context)
        context = dict(renderer_context or {})
        if self.compact and self.get_indent(accepted_media_type or "", context) is None:
            envelope = self._render({**data, "results": []}, accepted_media_type, context)
            if envelope.endswith(_EMPTY_RESULTS_END):
                return b"".join(
                    (envelope[: -len(_EMPTY_RESULTS_END)], b"[", b",".join(results), b"]}")
                )
        decoded = [json.loads(row) for row in results]
        return self._render({**data, "results": decoded}, accepted_media_type, context)

    def _render(
        self, data: Any, accepted_media_type: str | None, context: Mapping[str, Any] | None
    ) -> bytes:
        rendered: bytes = super().render(data, accepted_media_type, context)
        return rendered
