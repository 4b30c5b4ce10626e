"""Checks on uploaded files: by content, never by the name or type the browser claims."""

from __future__ import annotations

from typing import IO

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

MB = 1024 * 1024

# Leading bytes of each accepted format.
SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "pdf": (b"%PDF-",),
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
}


def detected_format(upload: IO[bytes]) -> str | None:
    """The format whose signature the file starts with, or None; leaves the file at its start."""
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    for name, signatures in SIGNATURES.items():
        if any(head.startswith(signature) for signature in signatures):
            return name
    return None


def upload_validate(upload: IO[bytes], *, formats: set[str], max_bytes: int, what: str) -> str:
    """Check an uploaded file's size and content; return its detected format.

    Raises ValidationError naming the problem: empty, too large, or not one of `formats`.
    """
    size = getattr(upload, "size", None)
    if size is None:
        upload.seek(0, 2)
        size = upload.tell()
        upload.seek(0)
    if size == 0:
        raise ValidationError(_("The %(what)s is empty.") % {"what": what}, code="empty")
    if size > max_bytes:
        raise ValidationError(
            _("The %(what)s is %(size)s MB; the limit is %(limit)s MB.")
            % {"what": what, "size": f"{size / MB:.1f}", "limit": max_bytes // MB},
            code="too_large",
        )
    found = detected_format(upload)
    if found not in formats:
        accepted = ", ".join(sorted(f.upper() for f in formats))
        raise ValidationError(
            _("The %(what)s must be a %(accepted)s file (checked by its content).")
            % {"what": what, "accepted": accepted},
            code="format",
        )
    return found
