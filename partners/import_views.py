"""Import market data in the browser: upload, preview every problem, then apply."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from crm.idempotency import once_per_form_token
from crm.roles import AuthenticatedHttpRequest, manager_required
from partners.imports import UPLOAD_MAX_BYTES, import_job_create, import_job_start_apply
from partners.market_csv.files import MARKET_FILES
from partners.models import ImportJob

PROBLEMS_SHOWN = 500


@manager_required
@once_per_form_token
def import_upload(request: AuthenticatedHttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        try:
            job = import_job_create(files=request.FILES.getlist("files"), by=request.user)
        except ValidationError as error:
            errors = error.messages
        else:
            return redirect("partners:import_job", pk=job.pk)
    return render(
        request,
        "partners/import_upload.html",
        {
            "errors": errors,
            "market_files": MARKET_FILES,
            "max_mb": UPLOAD_MAX_BYTES // (1024 * 1024),
            "recent": ImportJob.objects.select_related("created_by")[:10],
        },
        status=400 if errors else 200,
    )


@manager_required
def import_job(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    context = {
        "job": job,
        "problems": job.problems[:PROBLEMS_SHOWN],
        "more": max(0, len(job.problems) - PROBLEMS_SHOWN),
    }
    if request.headers.get("HX-Request"):
        return render(request, "partners/partials/import_status.html", context)
    return render(request, "partners/import_job.html", context)


@manager_required
def import_job_problems(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    response = HttpResponse(
        "\n".join(job.problems) + "\n", content_type="text/plain; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-problems.txt"'
    return response


@manager_required
@require_POST
def import_job_apply_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(ImportJob, pk=pk)
    try:
        import_job_start_apply(job=job)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("partners:import_job", pk=job.pk)
