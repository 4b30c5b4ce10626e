"""The files partners and staff download, answered the same way from the workspace, the portal
and the API; each caller decides who may see the object and what a missing file means."""

from __future__ import annotations

from django.http import FileResponse

from partners.models import Agreement, Feedback


def signed_document_response(agreement: Agreement) -> FileResponse:
    """The agreement's signed PDF as a download (the caller has checked there is one)."""
    return FileResponse(
        agreement.signed_document.open("rb"),
        as_attachment=True,
        filename=f"{agreement.external_id}-signed.pdf",
        content_type="application/pdf",
    )


def attachment_response(feedback: Feedback) -> FileResponse:
    """The feedback's attachment as a download (the caller has checked there is one)."""
    return FileResponse(
        feedback.attachment.open("rb"),
        as_attachment=True,
        filename=feedback.attachment_download_name,
    )
