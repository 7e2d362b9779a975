"""Browser pages of the import wizard (upload → map columns → live progress → error report)
and of exports. The work runs in Celery; the pages poll a small progress fragment with htmx."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from audiences.exports import export_create, export_file, export_get, export_rows
from audiences.imports.selectors import import_error_report, import_get, import_list, import_preview, import_targets
from audiences.imports.services import import_create, import_start
from audiences.jobs.machinery import JobFile
from audiences.models import ConsentSource, ImportMode, JobStatus, MailingList, SubscriptionStatus
from esp.api.errors import error_fields
from esp.input import parse_id
from esp.web import WorkspaceView, request_user

RECENT_JOBS = 20
CARRIED_FILTER = ("attr", "attr_op", "attr_value", "segment")


def _download(job_file: JobFile) -> FileResponse:
    return FileResponse(job_file.path.open("rb"), as_attachment=True, filename=job_file.filename)


def _field_errors(request: HttpRequest, error: ValidationError) -> dict[str, str]:
    fields = error_fields(error)
    for message in fields.pop("non_field_errors", []):
        messages.error(request, message)
    return {name: " ".join(texts) for name, texts in fields.items()}


class ImportsView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "audiences/imports.html", {"jobs": import_list(workspace=self.workspace)[:RECENT_JOBS]})

    def post(self, request: HttpRequest) -> HttpResponse:
        uploaded = request.FILES.get("file")
        if uploaded is None:
            messages.error(request, _("Choose a CSV file to upload."))
            return redirect("imports")
        try:
            job = import_create(workspace=self.workspace, user=request_user(request), uploaded_file=uploaded)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
            return redirect("imports")
        return redirect("import", import_id=job.pk)


class ImportView(WorkspaceView):
    """Step 2 (map the columns, choose list and consent) while uploaded; then progress."""

    def _render(self, request: HttpRequest, import_id: int, errors: dict[str, str] | None = None) -> HttpResponse:
        job = import_get(workspace=self.workspace, job_id=import_id)
        context: dict[str, Any] = {"job": job}
        if job.status == JobStatus.UPLOADED:
            preview = import_preview(job)
            mapping = {**preview.mapping, **{k: v for k, v in request.POST.items() if k in preview.header}}
            context.update(
                columns=[(index, name, mapping.get(name, "")) for index, name in enumerate(preview.header)],
                rows=preview.rows,
                targets=import_targets(workspace=self.workspace),
                lists=MailingList.objects.in_workspace(self.workspace),
                consent_sources=ConsentSource.choices,
                modes=ImportMode.choices,
                errors=errors or {},
                posted=request.POST,
            )
        return render(request, "audiences/import.html", context, status=400 if errors else 200)

    def get(self, request: HttpRequest, import_id: int) -> HttpResponse:
        if request.headers.get("HX-Request") == "true":  # the progress fragment, polled while the job runs
            job = import_get(workspace=self.workspace, job_id=import_id)
            return render(request, "audiences/partials/import_progress.html", {"job": job})
        return self._render(request, import_id)

    def post(self, request: HttpRequest, import_id: int) -> HttpResponse:
        job = import_get(workspace=self.workspace, job_id=import_id)
        list_id = request.POST.get("list", "")
        try:
            import_start(
                workspace=self.workspace,
                job_id=job.pk,
                mapping={column: request.POST.get(f"map-{index}", "") for index, column in enumerate(job.header)},
                list_id=parse_id(list_id),
                mode=request.POST.get("mode", ImportMode.UPDATE_EXISTING),
                consent_source=request.POST.get("consent_source", ConsentSource.IMPORT),
                consent_text=request.POST.get("consent_text", ""),
            )
        except ValidationError as error:
            return self._render(request, import_id, _field_errors(request, error) or {"": ""})
        return redirect("import", import_id=job.pk)


class ImportErrorsView(WorkspaceView):
    def get(self, request: HttpRequest, import_id: int) -> FileResponse:
        return _download(import_error_report(import_get(workspace=self.workspace, job_id=import_id)))


class ExportsView(WorkspaceView):
    def get(self, request: HttpRequest) -> HttpResponse:
        rows = export_rows(workspace=self.workspace, limit=RECENT_JOBS)
        if request.headers.get("HX-Request") == "true":
            return render(request, "audiences/partials/export_rows.html", {"rows": rows})
        return render(
            request,
            "audiences/exports.html",
            {
                "rows": rows,
                "lists": MailingList.objects.in_workspace(self.workspace),
                "statuses": SubscriptionStatus.choices,
                "carried": [(k, request.GET[k]) for k in CARRIED_FILTER if request.GET.get(k)],
            },
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        list_id = request.POST.get("list", "")
        contact_filter = {
            "list_id": parse_id(list_id),
            "status": request.POST.get("status", ""),
            "tag": request.POST.get("tag", ""),
            "q": request.POST.get("q", ""),
            # The contacts page's field and segment filter, carried over by "Export these".
            "attr": request.POST.get("attr", ""),
            "attr_op": request.POST.get("attr_op", ""),
            "attr_value": request.POST.get("attr_value", ""),
            "segment_id": request.POST.get("segment", ""),
        }
        try:
            export_create(workspace=self.workspace, user=request_user(request), filter=contact_filter)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Export started; the file appears below when it is ready."))
        return redirect("exports")


class ExportDownloadView(WorkspaceView):
    def get(self, request: HttpRequest, export_id: int) -> FileResponse:
        return _download(export_file(export_get(workspace=self.workspace, job_id=export_id)))
