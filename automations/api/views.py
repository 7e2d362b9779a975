"""API endpoints of series: CRUD with the step tree as JSON, publish / pause / resume / archive,
versions, counts per step, enrollments (list, create, end, trace), a contact's enrollments and
the dry run.

Views parse and answer; services write, selectors read. Every object is looked up in the
caller's workspace first, so another workspace's ids are 404s before any body is read. The
services' ValidationErrors come back as 400s naming the field by path (`steps[welcome].template`,
`trigger.event`), through the project's one error handler.

Two answers a client must handle besides 400:
- DELETE /series/{id} deletes only a series that never went live; one that ran (it has
  enrollments, a trace, figures) is refused with 409 `archive_instead`: POST …/archive ends its
  enrollments and keeps its history.
- POST /series/{id}/enrollments answers 409 `not_enrolled` when the series keeps the contact out
  (not live, already inside with this key, re-entry, flow filter), with the reason and the
  enrollment concerned, so that a retried request is told apart from a real refusal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from audiences import selectors as audience_selectors
from audiences.models import Contact
from automations import selectors, services
from automations.api import serializers as s
from automations.dry_run import series_dry_run
from automations.models import Enrollment, EnrollmentState, ReEntry, Series, SeriesStatus, SeriesVersion
from esp import clock
from esp.api.errors import error_body
from esp.api.views import WorkspaceAPIView
from esp.models import ApiScope

SERIES_NOT_FOUND = OpenApiResponse(description="No such series in this workspace.")
ENROLLMENT_NOT_FOUND = OpenApiResponse(description="No such enrollment in this workspace.")
ERROR = {"$ref": "#/components/schemas/Error"}
DRY_RUN_DAYS = 30


class SeriesAPIView(WorkspaceAPIView):
    read_scope = ApiScope.SERIES_READ
    write_scope = ApiScope.SERIES_WRITE

    def get_series(self, series_id: int) -> Series:
        try:
            return selectors.series_get(workspace=self.workspace, series_id=series_id)
        except Series.DoesNotExist:
            raise exceptions.NotFound(_("No such series in this workspace.")) from None

    def get_enrollment(self, enrollment_id: int) -> Enrollment:
        try:
            return selectors.enrollment_get(workspace=self.workspace, enrollment_id=enrollment_id)
        except Enrollment.DoesNotExist:
            raise exceptions.NotFound(_("No such enrollment in this workspace.")) from None

    def series_context(self, page: list[Series]) -> dict[str, Any]:
        ids = [series.pk for series in page]
        return {
            "figures": selectors.series_figures(workspace=self.workspace, series_ids=ids),
            "drafts": selectors.series_draft_numbers(workspace=self.workspace, series_ids=ids),
        }

    def series_detail(self, series_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        # Read again after a write: the answer shows what is stored, figures and draft included.
        series = self.get_series(series_id)
        context = {**self.series_context([series]), "latest": selectors.series_latest_version(series=series)}
        return Response(s.SeriesDetailSerializer(series, context=context).data, status=status_code)

    def find_contact(self, ref: dict[str, Any], field: str = "contact") -> Contact:
        """The contact a request names: another workspace's is "no such contact", a 400."""
        if "id" in ref:
            contact = audience_selectors.contacts(workspace=self.workspace).filter(pk=ref["id"]).first()
        else:
            contact = audience_selectors.contact_find(
                workspace=self.workspace, email=ref.get("email", "").strip(), external_id=ref.get("external_id", "")
            )
        if contact is None:
            raise exceptions.ValidationError(
                {field: [_("No such contact in this workspace; create or identify the contact first.")]}
            )
        return contact

    def enrollment_detail(self, enrollment_id: int, status_code: int = status.HTTP_200_OK) -> Response:
        enrollment = self.get_enrollment(enrollment_id)
        traces = selectors.traces_by_enrollment(workspace=self.workspace, enrollment_ids=[enrollment.pk])
        return Response(s.EnrollmentDetailSerializer(enrollment, context={"traces": traces}).data, status=status_code)


# --- series ---------------------------------------------------------------------------------


class SeriesListView(SeriesAPIView, generics.ListAPIView[Series]):
    serializer_class = s.SeriesSerializer

    def get_queryset(self) -> QuerySet[Series]:
        wanted = self.request.query_params.get("status", "")
        if wanted and wanted not in SeriesStatus.values:
            raise exceptions.ValidationError({"status": [_("One of: %s.") % ", ".join(SeriesStatus.values)]})
        series = selectors.series_list(workspace=self.workspace, include_archived=wanted == SeriesStatus.ARCHIVED)
        return series.filter(status=wanted) if wanted else series

    @extend_schema(
        operation_id="series_list",
        summary="The workspace's series with their figures",
        description="Newest first (cursor-paginated). Archived series are listed only with `status=archived`.",
        parameters=[
            OpenApiParameter("status", str, enum=SeriesStatus.values, description="Only series in this status.")
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # the project's pagination always pages
        return self.get_paginated_response(
            s.SeriesSerializer(page, many=True, context=self.series_context(list(page))).data
        )

    @extend_schema(
        operation_id="series_create",
        summary="Create a series (in draft)",
        description=(
            "The series starts as a draft; `steps` (optional) become its draft version 1, checked as a whole: "
            "every problem comes back in `fields` by path, e.g. `steps[welcome].template`, `trigger.event`. "
            "Publish it to go live."
        ),
        request=s.SeriesInputSerializer,
        responses={201: s.SeriesDetailSerializer},
    )
    def post(self, request: Request) -> Response:
        body = s.SeriesInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        series = services.series_create(workspace=self.workspace, data=services.SeriesInput(**body.validated_data))
        return self.series_detail(series.pk, status.HTTP_201_CREATED)


class SeriesDetailView(SeriesAPIView):
    @extend_schema(
        operation_id="series_get",
        summary="A series with its steps",
        description="`steps` are the draft's when there is one, else the live version's.",
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def get(self, request: Request, series_id: int) -> Response:
        return self.series_detail(self.get_series(series_id).pk)

    @extend_schema(
        operation_id="series_update",
        summary="Change settings and/or the draft's steps",
        description=(
            "Only the given fields change. Settings apply at once; `steps` change the draft — a published "
            "version is never changed: when the latest is published, a new draft is made from it. Publish the "
            "draft to apply it. An archived series cannot be changed (400 on `status`)."
        ),
        request=s.SeriesInputSerializer(partial=True),
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def patch(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        body = s.SeriesInputSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        services.series_update(
            workspace=self.workspace, series_id=series.pk, data=services.SeriesInput(**body.validated_data)
        )
        return self.series_detail(series.pk)

    @extend_schema(
        operation_id="series_delete",
        summary="Delete a series that never went live",
        description=(
            "A draft that was never published is deleted (204). A series that has run keeps its enrollments, "
            "trace and figures: it is refused with 409 `archive_instead` — POST /series/{id}/archive ends its "
            "enrollments and hides it from the list."
        ),
        responses={
            204: OpenApiResponse(description="Deleted."),
            404: SERIES_NOT_FOUND,
            409: OpenApiResponse(response=ERROR, description="The series has run: archive it instead."),
        },
    )
    def delete(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        if not services.series_deletable(series):
            return Response(
                error_body(
                    409,
                    "archive_instead",
                    _("A series that has run keeps its history: archive it instead (POST …/archive)."),
                ),
                status=status.HTTP_409_CONFLICT,
            )
        services.series_delete(workspace=self.workspace, series_id=series.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SeriesPublishView(SeriesAPIView):
    @extend_schema(
        operation_id="series_publish",
        summary="Publish the draft and go live",
        description=(
            "The draft is checked again (its templates may have gone since) and becomes the live version; a "
            "draft series goes live, a paused one stays paused. People inside keep their version unless "
            "`move_waiting` (everyone on a kept step) or `move_steps` (those on the steps named). 400 on `steps` when "
            "there is no draft, on `status` for an archived series, on `move_steps` for a key the draft lacks."
        ),
        request=s.PublishSerializer,
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        body = s.PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.series_publish(
            workspace=self.workspace,
            series_id=series.pk,
            move_waiting=body.validated_data["move_waiting"],
            move_steps=body.validated_data.get("move_steps"),
        )
        return self.series_detail(series.pk)


class SeriesWebhookSecretView(SeriesAPIView):
    @extend_schema(
        operation_id="series_webhook_secret_rotate",
        summary="Make a new webhook signing secret",
        description=(
            "The series' webhook steps sign every call with HMAC-SHA256 over `<timestamp>.<body>` "
            "(header `X-ESP-Signature: t=…,v1=…`). This makes a new secret and returns it; calls sent "
            "from now on are signed with it, so give it to the receivers."
        ),
        request=None,
        responses={200: s.WebhookSecretSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        secret = services.series_webhook_secret_rotate(workspace=self.workspace, series_id=series.pk)
        return Response({"webhook_secret": secret})


class SeriesPauseView(SeriesAPIView):
    @extend_schema(
        operation_id="series_pause",
        summary="Pause a live series",
        description="Nobody enters; due steps wait. 400 on `status` unless the series is live.",
        request=None,
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        services.series_pause(workspace=self.workspace, series_id=series.pk)
        return self.series_detail(series.pk)


class SeriesResumeView(SeriesAPIView):
    @extend_schema(
        operation_id="series_resume",
        summary="Resume a paused series",
        description=(
            "With `skip_older_than_hours`, an email step that fell due longer ago than that is skipped (traced "
            "as stale) instead of sending old news. 400 on `status` unless the series is paused."
        ),
        request=s.ResumeSerializer,
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        body = s.ResumeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        hours = body.validated_data.get("skip_older_than_hours")
        services.series_resume(
            workspace=self.workspace,
            series_id=series.pk,
            skip_older_than=dt.timedelta(hours=hours) if hours is not None else None,
        )
        return self.series_detail(series.pk)


class SeriesArchiveView(SeriesAPIView):
    @extend_schema(
        operation_id="series_archive",
        summary="Archive a series",
        description="Its live enrollments end as exited; the series, its versions and figures stay readable.",
        request=None,
        responses={200: s.SeriesDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        if series.status != SeriesStatus.ARCHIVED:
            services.series_archive(workspace=self.workspace, series_id=series.pk)
        return self.series_detail(series.pk)


# --- versions and steps ----------------------------------------------------------------------


class SeriesVersionListView(SeriesAPIView, generics.ListAPIView[SeriesVersion]):
    serializer_class = s.SeriesVersionSerializer

    def get_queryset(self) -> QuerySet[SeriesVersion]:
        series = self.get_series(self.kwargs["series_id"])
        return selectors.series_versions(series=series).select_related("series")

    @extend_schema(
        operation_id="series_versions",
        summary="A series' versions, newest first",
        responses={200: s.SeriesVersionSerializer(many=True), 404: SERIES_NOT_FOUND},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SeriesVersionDetailView(SeriesAPIView):
    @extend_schema(
        operation_id="series_version_get",
        summary="One version with its steps",
        responses={200: s.SeriesVersionDetailSerializer, 404: SERIES_NOT_FOUND},
    )
    def get(self, request: Request, series_id: int, version_number: int) -> Response:
        series = self.get_series(series_id)
        try:
            version = selectors.series_version_get(series=series, number=version_number)
        except SeriesVersion.DoesNotExist:
            raise exceptions.NotFound(_("This series has no version with this number.")) from None
        return Response(s.SeriesVersionDetailSerializer(version).data)


class SeriesStepsView(SeriesAPIView):
    @extend_schema(
        operation_id="series_steps",
        summary="Counts per step",
        description=(
            "In the order of the live version's steps (the draft's before the first publish), over every "
            "version that has the step's key; steps only older versions have come last."
        ),
        responses={200: s.SeriesStepsSerializer, 404: SERIES_NOT_FOUND},
    )
    def get(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        version = series.live_version or selectors.series_latest_version(series=series)
        counts = selectors.series_step_counts(workspace=self.workspace, series=series)
        listed = version.steps.get("steps", []) if version is not None else []
        rows = []
        for step in listed:
            rows.append(self._row(step["key"], step["type"], step.get("name", ""), True, counts.pop(step["key"], None)))
        for key in sorted(counts):
            if key:
                rows.append(self._row(key, "", "", False, counts[key]))
        return Response(
            s.SeriesStepsSerializer({"version": version.number if version is not None else None, "steps": rows}).data
        )

    @staticmethod
    def _row(key: str, kind: str, name: str, in_version: bool, counts: selectors.StepCounts | None) -> dict[str, Any]:
        figures = counts or selectors.StepCounts()
        return {"key": key, "type": kind, "name": name, "in_version": in_version, **vars(figures)}


# --- enrollments -----------------------------------------------------------------------------


class SeriesEnrollmentsView(SeriesAPIView, generics.ListAPIView[Enrollment]):
    serializer_class = s.EnrollmentSerializer

    def get_queryset(self) -> QuerySet[Enrollment]:
        series = self.get_series(self.kwargs["series_id"])
        state = self.request.query_params.get("state", "")
        if state and state not in EnrollmentState.values:
            raise exceptions.ValidationError({"state": [_("One of: %s.") % ", ".join(EnrollmentState.values)]})
        return selectors.series_enrollments(workspace=self.workspace, series=series, state=state)

    @extend_schema(
        operation_id="series_enrollments",
        summary="A series' enrollments, newest first (cursor-paginated)",
        parameters=[OpenApiParameter("state", str, enum=EnrollmentState.values, description="Only in this state.")],
        responses={200: s.EnrollmentSerializer(many=True), 404: SERIES_NOT_FOUND},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="series_enroll",
        summary="Enroll a contact",
        description=(
            "Enters the contact into the live version with the series' rules (flow filter, re-entry, holdout), "
            "whatever its trigger; the first step runs at once. `data` is what its emails read as `event`. "
            "201 with the enrollment; 409 `not_enrolled` when the series keeps the contact out, with `reason` "
            "(not_live, already_enrolled, re_entry, flow_filter) and the enrollment concerned, if any — a "
            "retried request gets already_enrolled with the first one's id. A contact unknown in the workspace "
            "is a 400 on `contact`."
        ),
        request=s.EnrollmentCreateSerializer,
        responses={
            201: s.EnrollmentDetailSerializer,
            404: SERIES_NOT_FOUND,
            409: OpenApiResponse(response=s.EnrollmentRefusedSerializer, description="The series keeps them out."),
        },
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        body = s.EnrollmentCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact = self.find_contact(body.validated_data["contact"])
        key = body.validated_data["key"]
        if series.status != SeriesStatus.LIVE or series.live_version is None:
            return self._refused("not_live", _("The series is not live: publish or resume it first."), None)
        enrollment_id = services.enrollment_create(
            workspace=self.workspace, series_id=series.pk, contact=contact, key=key, data=body.validated_data["data"]
        )
        if enrollment_id is not None:
            return self.enrollment_detail(enrollment_id, status.HTTP_201_CREATED)
        refusal = selectors.enrollment_refusal(workspace=self.workspace, series=series, contact_id=contact.pk, key=key)
        return self._refused(refusal.reason, self._refusal_message(series, refusal.reason), refusal.enrollment_id)

    @staticmethod
    def _refusal_message(series: Series, reason: str) -> str:
        if reason == "already_enrolled":
            return _("The contact is in this series already with this key.")
        if reason == "re_entry" and series.re_entry == ReEntry.PERIOD:
            return _("The contact entered this series less than %(days)d days ago.") % {"days": series.re_entry_days}
        if reason == "re_entry":
            return _("The contact entered this series before, and it is entered once.")
        return _("The contact does not match the series' flow filter.")

    @staticmethod
    def _refused(reason: str, message: str, enrollment_id: int | None) -> Response:
        body = error_body(409, "not_enrolled", message)
        body["error"].update({"reason": reason, "enrollment": enrollment_id})
        return Response(body, status=status.HTTP_409_CONFLICT)


class EnrollmentDetailView(SeriesAPIView):
    @extend_schema(
        operation_id="enrollments_get",
        summary="An enrollment with its trace",
        responses={200: s.EnrollmentDetailSerializer, 404: ENROLLMENT_NOT_FOUND},
    )
    def get(self, request: Request, enrollment_id: int) -> Response:
        return self.enrollment_detail(self.get_enrollment(enrollment_id).pk)


class EnrollmentEndView(SeriesAPIView):
    @extend_schema(
        operation_id="enrollments_end",
        summary="End an enrollment",
        description="It ends as exited, with `reason`; no more steps run. Ending an ended enrollment changes nothing.",
        request=s.EnrollmentEndSerializer,
        responses={200: s.EnrollmentDetailSerializer, 404: ENROLLMENT_NOT_FOUND},
    )
    def post(self, request: Request, enrollment_id: int) -> Response:
        enrollment = self.get_enrollment(enrollment_id)
        body = s.EnrollmentEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if enrollment.is_live:
            services.enrollment_end(
                workspace=self.workspace, enrollment_id=enrollment.pk, reason=body.validated_data["reason"]
            )
        return self.enrollment_detail(enrollment.pk)


class ContactEnrollmentsView(SeriesAPIView, generics.ListAPIView[Enrollment]):
    serializer_class = s.EnrollmentDetailSerializer

    def get_queryset(self) -> QuerySet[Enrollment]:
        contact = audience_selectors.contact_get(workspace=self.workspace, contact_id=self.kwargs["contact_id"])
        return selectors.contact_enrollments_rows(workspace=self.workspace, contact_id=contact.pk)

    @extend_schema(
        operation_id="contacts_enrollments",
        summary="A contact's enrollments, each with its trace",
        description="Newest first (cursor-paginated).",
        responses={200: s.EnrollmentDetailSerializer(many=True), 404: OpenApiResponse(description="No such contact.")},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.get_queryset())
        assert page is not None  # the project's pagination always pages
        traces = selectors.traces_by_enrollment(workspace=self.workspace, enrollment_ids=[e.pk for e in page])
        return self.get_paginated_response(
            s.EnrollmentDetailSerializer(page, many=True, context={"traces": traces}).data
        )


# --- dry run -------------------------------------------------------------------------------------


class SeriesDryRunView(SeriesAPIView):
    # A POST that writes nothing, yet a POST: like a segment count it asks for the write scope,
    # so a viewer's session and a read-only key only read.
    @extend_schema(
        operation_id="series_dry_run",
        summary="Replay a contact's history against the series; nothing is written or sent",
        description=(
            "What would have happened, when and why: entries, emails, waits, branches, goals. Lines after now "
            "are marked `future`. Conditions on attributes, lists and facts are judged on the contact as they "
            "are today (said in `notes`). 400 on `version` for a number the series does not have."
        ),
        request=s.DryRunInputSerializer,
        responses={200: s.DryRunSerializer, 404: SERIES_NOT_FOUND},
    )
    def post(self, request: Request, series_id: int) -> Response:
        series = self.get_series(series_id)
        body = s.DryRunInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        contact = self.find_contact(body.validated_data["contact"])
        number = body.validated_data.get("version")
        version: SeriesVersion | None
        if number is not None:
            try:
                version = selectors.series_version_get(series=series, number=number)
            except SeriesVersion.DoesNotExist:
                raise exceptions.ValidationError(
                    {"version": [_("This series has no version with this number.")]}
                ) from None
        else:
            # The draft is what is being edited, so it is what a dry run is asked about.
            version = selectors.series_latest_version(series=series)
        since = body.validated_data.get("since") or clock.now() - dt.timedelta(days=DRY_RUN_DAYS)
        run = series_dry_run(workspace=self.workspace, series=series, contact=contact, since=since, version=version)
        return Response(s.DryRunSerializer(run).data)
