"""Market imports started in the browser: the same importer as `import_csv`, run by a task.

Uploaded files go to a private folder; a job validates them (nothing written), shows every
problem or a preview, and applies them all-or-nothing when a manager confirms.
"""

from __future__ import annotations

import csv
import logging
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.enqueue import task_enqueue
from crm.files import MB
from partners.market_csv.files import MARKET_FILES_BY_NAME
from partners.market_import import MarketImportError, market_import
from partners.models import ImportJob, ImportJobStatus

logger = logging.getLogger(__name__)

UPLOAD_MAX_BYTES = 200 * MB
PREVIEW_ROWS = 5


def _folder(job: ImportJob) -> Path:
    return Path(settings.MEDIA_ROOT) / "imports" / job.folder


@transaction.atomic
def import_job_create(*, files: list[UploadedFile], by: User) -> ImportJob:
    """Store the uploaded market files and queue their validation.

    Raises ValidationError for no files, an unknown or repeated file name, or a file over
    UPLOAD_MAX_BYTES. The file names are checked against the known names, so a
    path-like name can never choose where a file is written.
    """
    if not files:
        raise ValidationError({"files": _("Choose one or more of the market CSV files.")})
    known = ", ".join(MARKET_FILES_BY_NAME)
    names: list[str] = []
    for upload in files:
        name = upload.name or ""
        if name not in MARKET_FILES_BY_NAME:
            raise ValidationError(
                {
                    "files": _("%(name)r is not a market file name; expected one of %(known)s.")
                    % {"name": name, "known": known}
                }
            )
        if name in names:
            raise ValidationError({"files": _("%(name)s was chosen twice.") % {"name": name}})
        if upload.size and upload.size > UPLOAD_MAX_BYTES:
            raise ValidationError(
                {
                    "files": _("%(name)s is larger than %(size)s MB.")
                    % {"name": name, "size": UPLOAD_MAX_BYTES // MB}
                }
            )
        names.append(name)
    job = ImportJob.objects.create(
        created_by=by,
        folder=uuid.uuid4().hex,
        file_names=names,
        language=translation.get_language() or "",
    )
    folder = _folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    for upload in files:
        with open(folder / MARKET_FILES_BY_NAME[upload.name or ""].name, "wb") as target:
            for chunk in upload.chunks():
                target.write(chunk)
    transaction.on_commit(lambda: _enqueue("validate", job.pk))
    return job


def _enqueue(step: str, job_id: int) -> None:
    try:
        task_enqueue(f"partners.import_job_{step}", job_id)
    except Exception as error:  # noqa: BLE001 - broker down: run it here rather than leave it hanging
        logger.warning(
            "import job %s: broker unavailable (%s); running in the request", job_id, error
        )
        (import_job_validate if step == "validate" else import_job_apply)(job_id=job_id)


def _preview(folder: Path, names: list[str]) -> dict[str, list[list[str]]]:
    preview: dict[str, list[list[str]]] = {}
    for name in names:
        with open(folder / name, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            preview[name] = [row for _, row in zip(range(PREVIEW_ROWS + 1), reader, strict=False)]
    return preview


def import_job_validate(*, job_id: int) -> ImportJob:
    """Check a job's files without writing; the job ends VALID (with a preview) or INVALID
    (with every problem as `file:line: column: problem`, worded in the job's language)."""
    job = ImportJob.objects.get(pk=job_id)
    with translation.override(job.language or settings.LANGUAGE_CODE):
        return _validate(job)


def _validate(job: ImportJob) -> ImportJob:
    folder = _folder(job)
    ImportJob.objects.filter(pk=job.pk).update(
        started_at=timezone.now(), status=ImportJobStatus.VALIDATING
    )
    try:
        report = market_import(paths=[folder / name for name in job.file_names], dry_run=True)
    except MarketImportError as error:
        job.status, job.problems = ImportJobStatus.INVALID, error.problems
    except Exception as error:  # noqa: BLE001 - an unreadable file must end the job visibly
        logger.exception("import job %s: validation crashed", job.pk)
        job.status = ImportJobStatus.FAILED
        job.error = _("The files could not be read: %(error)s") % {"error": error}
    else:
        job.status = ImportJobStatus.VALID
        job.problems = []
        job.report = {"files": [{"name": f.name, "rows": f.rows} for f in report.files]}
        job.preview = _preview(folder, job.file_names)
    job.finished_at = timezone.now()
    job.save()
    return job


def import_job_start_apply(*, job: ImportJob) -> ImportJob:
    """Queue the import of a validated job. Raises ValidationError unless it is VALID."""
    updated = ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.VALID).update(
        status=ImportJobStatus.APPLYING, started_at=timezone.now(), finished_at=None
    )
    if not updated:
        raise ValidationError(
            _("Only a checked job with no problems can be imported, and only once.")
        )
    transaction.on_commit(lambda: _enqueue("apply", job.pk))
    job.refresh_from_db()
    return job


def import_job_apply(*, job_id: int) -> ImportJob:
    """Import a job's files all-or-nothing; the job ends APPLIED with created/updated counts,
    INVALID if the data changed since validation, or FAILED with the error (problems worded
    in the job's language)."""
    job = ImportJob.objects.get(pk=job_id)
    if job.status != ImportJobStatus.APPLYING:
        return job
    with translation.override(job.language or settings.LANGUAGE_CODE):
        return _apply(job)


def _apply(job: ImportJob) -> ImportJob:
    folder = _folder(job)
    try:
        report = market_import(paths=[folder / name for name in job.file_names])
    except MarketImportError as error:
        job.status, job.problems = ImportJobStatus.INVALID, error.problems
    except Exception as error:  # noqa: BLE001 - nothing was written (one transaction); say why
        logger.exception("import job %s: import failed", job.pk)
        job.status, job.error = ImportJobStatus.FAILED, str(error)[:2000]
    else:
        job.status = ImportJobStatus.APPLIED
        job.report = {
            "files": [
                {
                    "name": f.name,
                    "rows": f.rows,
                    "created": f.created,
                    "updated": f.updated,
                    "unchanged": f.unchanged,
                }
                for f in report.files
            ],
            "seconds": round(report.seconds, 1),
        }
        shutil.rmtree(folder, ignore_errors=True)
    job.finished_at = timezone.now()
    job.save()
    return job
