from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from crm.models import Account, Region
from partners.models import ImportJob, ImportJobStatus
from partners.webhook_models import WebhookDelivery, WebhookEndpoint
from tests.cast import Cast, signed_in


def _csv(name: str, text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


GOOD = {
    "regions.csv": "code,name\neast,East China\n",
    "verticals.csv": "code,name\nretail,Retail\n",
    "accounts.csv": "external_id,name,region,vertical,size_band,entered_on,archived_on,"
    "converted_on,converted_via\nA-1,Shop One,east,retail,smb,2025-01-01,,,\n",
}


class TestBrowserImport:
    def test_it_checks_previews_and_applies_the_files(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        client = signed_in(cast.manager)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/workspace/imports/", {"files": [_csv(n, t) for n, t in GOOD.items()]}
            )
        job = ImportJob.objects.get()
        assert response["Location"] == f"/workspace/imports/{job.pk}/"
        assert job.status == ImportJobStatus.VALID and not Account.objects.exists()
        page = client.get(f"/workspace/imports/{job.pk}/").content.decode()
        assert "Shop One" in page and "Import these files" in page

        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/workspace/imports/{job.pk}/apply/")
        job.refresh_from_db()
        assert job.status == ImportJobStatus.APPLIED
        assert Account.objects.get().external_id == "A-1"
        assert {f["name"]: f["created"] for f in job.report["files"]}["accounts.csv"] == 1
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/workspace/imports/{job.pk}/apply/")
        assert Account.objects.count() == 1, "a job applies once"

    def test_applying_announces_the_agreements_it_creates(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        WebhookEndpoint.objects.create(
            url="https://hooks.example/crm", secret="s" * 20, events=["agreement.status_changed"]
        )
        files = {
            "partners.csv": "external_id,name,channel_kind,partner_type,tier\n"
            "P-NEW,New Partner,partner,reseller,gold\n",
            "agreements.csv": "external_id,partner,agreement_type,start_date,end_date,signed_on,"
            "terminated_on,regions,verticals,exclusive\n"
            "AG-NEW,P-NEW,reseller,2025-01-01,2099-12-31,2025-01-10,,,,false\n",
        }
        client = signed_in(cast.manager)
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/workspace/imports/", {"files": [_csv(n, t) for n, t in files.items()]})
        job = ImportJob.objects.get()
        assert not WebhookDelivery.objects.exists(), "checking the files announces nothing"
        with django_capture_on_commit_callbacks(execute=True):
            client.post(f"/workspace/imports/{job.pk}/apply/")
        delivery = WebhookDelivery.objects.get()
        agreement = delivery.payload["data"]["agreement"]
        assert (agreement["external_id"], agreement["partner"]) == ("AG-NEW", "P-NEW")
        assert (agreement["previous_status"], agreement["status"]) == ("", "active")
        assert delivery.attempts == 1, "queued once the import committed, and attempted"

    def test_it_reports_every_bad_row_and_writes_nothing(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        bad = dict(GOOD)
        bad["accounts.csv"] = (
            "external_id,name,region,vertical,size_band,entered_on,archived_on,converted_on,converted_via\n"
            "A-1,Shop One,nowhere,retail,smb,2025-01-01,,,\n"
            "A-2,Shop Two,east,retail,smb,2025-02-30,,,\n"
        )
        client = signed_in(cast.manager)
        with django_capture_on_commit_callbacks(execute=True):
            client.post("/workspace/imports/", {"files": [_csv(n, t) for n, t in bad.items()]})
        job = ImportJob.objects.get()
        assert job.status == ImportJobStatus.INVALID
        page = client.get(f"/workspace/imports/{job.pk}/").content.decode()
        assert "accounts.csv:2: region:" in page and "accounts.csv:3: entered_on:" in page
        assert not Region.objects.exists() and not Account.objects.exists()
        assert client.post(f"/workspace/imports/{job.pk}/apply/", follow=True).status_code == 200
        assert not Account.objects.exists()

    def test_problems_are_worded_in_the_language_the_files_were_uploaded_in(
        self, cast: Cast, django_capture_on_commit_callbacks: Any
    ) -> None:
        bad = dict(GOOD)
        bad["accounts.csv"] = (
            "external_id,name,region,vertical,size_band,entered_on,archived_on,converted_on,converted_via\n"
            "A-1,Shop One,nowhere,retail,smb,2025-02-30,,,\n"
        )
        problems = {}
        for language in ("zh-hans", "en"):
            client = signed_in(cast.manager)
            client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
            with django_capture_on_commit_callbacks(execute=True):
                client.post("/workspace/imports/", {"files": [_csv(n, t) for n, t in bad.items()]})
            job = ImportJob.objects.latest("pk")
            assert (job.status, job.language) == (ImportJobStatus.INVALID, language)
            problems[language] = job.problems
        assert problems["zh-hans"] == [
            "accounts.csv:2: region: 未知的区域代码 'nowhere'",
            "accounts.csv:2: entered_on: 不是日期（应为 yyyy-mm-dd）：'2025-02-30'",
        ]
        assert problems["en"] == [
            "accounts.csv:2: region: unknown region code 'nowhere'",
            "accounts.csv:2: entered_on: not a date (expected yyyy-mm-dd): '2025-02-30'",
        ]

    def test_it_refuses_unknown_and_path_like_file_names(self, cast: Cast) -> None:
        client = signed_in(cast.manager)
        for name in ["../../etc/passwd", "notes.csv"]:
            response = client.post("/workspace/imports/", {"files": [_csv(name, "code,name\n")]})
            assert response.status_code == 400
            assert 'data-field-error="files"' in response.content.decode()
        assert not ImportJob.objects.exists()

    def test_it_is_for_managers_only(self, cast: Cast) -> None:
        for user in (cast.rep_user, cast.executive, cast.partner_a_user):
            assert signed_in(user).get("/workspace/imports/").status_code == 404
