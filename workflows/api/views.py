"""Thin API views: parse, check permission, call one service or selector, render.

What a caller may not view is a 404 (selectors raise NotFound); what they may view but not act
on is a 403.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.response import Response

from config.pagination import BySlug, ByStart, NewestFirst, NewestVersionFirst
from config.serializers import SpecInput, api_errors, parsed, require
from workflows import selectors, services
from workflows.api import serializers as s
from workflows.engine.api import run_cancel, run_retry, run_start
from workflows.models import Run, Workflow, WorkflowVersion


class WorkflowsView(generics.ListAPIView):
    queryset = Workflow.objects.none()  # the model, for the schema; rows come from selectors
    serializer_class = s.WorkflowSerializer
    pagination_class = BySlug

    def get_queryset(self):
        return selectors.workflows_list(user=self.request.user)

    @extend_schema(summary="List the workflows visible to the caller")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create a workflow from a spec (its version 1)",
        request=SpecInput,
        responses={201: s.WorkflowDetailSerializer, **api_errors(400, 403, 409)},
    )
    def post(self, request):
        require(request.user.has_perm("workflows.add_workflow"), "You may not create workflows.")
        data = parsed(SpecInput, request.data)
        workflow = services.workflow_create(source=data["spec"], created_by=request.user)
        workflow = selectors.workflow_get_visible(user=request.user, slug=workflow.slug)
        return Response(s.WorkflowDetailSerializer(workflow).data, status=status.HTTP_201_CREATED)


class WorkflowView(generics.GenericAPIView):
    queryset = Workflow.objects.none()
    serializer_class = s.WorkflowDetailSerializer
    lookup_field = "slug"  # names the path parameter in the schema

    @extend_schema(
        summary="A workflow with its current version",
        responses={200: s.WorkflowDetailSerializer, **api_errors(404)},
    )
    def get(self, request, slug):
        workflow = selectors.workflow_get_visible(user=request.user, slug=slug)
        return Response(s.WorkflowDetailSerializer(workflow).data)

    @extend_schema(
        summary="Pause or unpause a workflow",
        request=s.WorkflowUpdateInput,
        responses={200: s.WorkflowDetailSerializer, **api_errors(400, 403, 404)},
    )
    def patch(self, request, slug):
        workflow = selectors.workflow_get_visible(user=request.user, slug=slug)
        require(
            selectors.workflow_permits(request.user, workflow, "change_workflow"),
            "You may not change this workflow.",
        )
        data = parsed(s.WorkflowUpdateInput, request.data)
        services.workflow_set_paused(workflow=workflow, paused=data["paused"], by=request.user)
        workflow = selectors.workflow_get_visible(user=request.user, slug=slug)
        return Response(s.WorkflowDetailSerializer(workflow).data)


class WorkflowVersionsView(generics.ListAPIView):
    queryset = WorkflowVersion.objects.none()
    serializer_class = s.VersionSerializer
    pagination_class = NewestVersionFirst

    def get_queryset(self):
        workflow = selectors.workflow_get_visible(user=self.request.user, slug=self.kwargs["slug"])
        return selectors.workflow_versions_list(workflow=workflow)

    @extend_schema(
        summary="List a workflow's versions, newest first",
        responses={200: s.VersionSerializer(many=True), **api_errors(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Publish a new version; it becomes current",
        description="Publishing a spec identical to the current version returns it with 200.",
        request=SpecInput,
        responses={
            201: s.VersionSerializer,
            200: s.VersionSerializer,
            **api_errors(400, 403, 404),
        },
    )
    def post(self, request, slug):
        workflow = selectors.workflow_get_visible(user=request.user, slug=slug)
        require(
            selectors.workflow_permits(request.user, workflow, "change_workflow"),
            "You may not publish versions of this workflow.",
        )
        data = parsed(SpecInput, request.data)
        previous = workflow.current_version_id
        version = services.workflow_version_publish(
            workflow=workflow, source=data["spec"], published_by=request.user
        )
        created = version.pk != previous
        return Response(
            s.VersionSerializer(version).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class WorkflowRunsView(generics.GenericAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunDetailSerializer

    @extend_schema(
        summary="Start a run",
        description="201 with the new run; 200 with the existing run when `idempotency_key` "
        "was used before for this workflow.",
        request=s.RunStartInput,
        responses={
            201: s.RunDetailSerializer,
            200: s.RunDetailSerializer,
            **api_errors(400, 403, 404, 409),
        },
    )
    def post(self, request, slug):
        workflow = selectors.workflow_get_visible(user=request.user, slug=slug)
        require(
            selectors.workflow_permits(request.user, workflow, "run_workflow"),
            "You may not start runs of this workflow.",
        )
        data = parsed(s.RunStartInput, request.data)
        run, created = run_start(
            workflow=workflow,
            inputs=data["inputs"],
            started_by=request.user,
            idempotency_key=data.get("idempotency_key") or None,
            ctx=data.get("ctx"),
            budget_usd=data.get("budget_usd"),
        )
        run = selectors.run_get_visible(user=request.user, run_id=run.pk, with_steps=True)
        return Response(
            s.RunDetailSerializer(run).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class RunsView(generics.ListAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunSerializer
    pagination_class = NewestFirst

    def get_queryset(self):
        filters = parsed(s.RunFilterInput, self.request.query_params)
        return selectors.runs_list(
            user=self.request.user,
            workflow_slug=filters.get("workflow"),
            status=filters.get("status"),
        )

    @extend_schema(
        summary="List the runs visible to the caller, newest first",
        parameters=[s.RunFilterInput],
        responses={200: s.RunSerializer(many=True), **api_errors(400)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunView(generics.GenericAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunDetailSerializer

    @extend_schema(
        summary="A run with its steps, their executions, progress, cost and result",
        responses={200: s.RunDetailSerializer, **api_errors(404)},
    )
    def get(self, request, run_id):
        run = selectors.run_get_visible(user=request.user, run_id=run_id, with_steps=True)
        return Response(s.RunDetailSerializer(run).data)


class RunStepsView(generics.ListAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunStepSerializer
    pagination_class = ByStart

    def get_queryset(self):
        run = selectors.run_get_visible(user=self.request.user, run_id=self.kwargs["run_id"])
        return selectors.run_steps(run=run)

    @extend_schema(
        summary="The run's steps with their executions, in the order they started",
        responses={200: s.RunStepSerializer(many=True), **api_errors(404)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RunEventsView(generics.GenericAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunEventsSerializer

    @extend_schema(
        summary="The run's events after a sequence number",
        parameters=[s.EventsQueryInput],
        responses={200: s.RunEventsSerializer, **api_errors(400, 404)},
    )
    def get(self, request, run_id):
        query = parsed(s.EventsQueryInput, request.query_params)
        run = selectors.run_get_visible(user=request.user, run_id=run_id)
        limit = query["limit"]
        events = selectors.run_events_after(run=run, after=query["after"], limit=limit + 1)
        page = events[:limit]
        body = {
            "run_status": run.status,
            "results": page,
            "last_seq": page[-1].seq if page else query["after"],
            "has_more": len(events) > limit,
        }
        return Response(s.RunEventsSerializer(body).data)


class RunCancelView(generics.GenericAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunDetailSerializer

    @extend_schema(
        summary="Cancel a run, its steps and its child runs",
        request=s.RunCancelInput,
        responses={200: s.RunDetailSerializer, **api_errors(400, 403, 404, 409)},
    )
    def post(self, request, run_id):
        run = selectors.run_get_visible(user=request.user, run_id=run_id)
        require(
            request.user.has_perm("workflows.cancel_run")
            or selectors.workflow_permits(request.user, run.workflow, "run_workflow"),
            "You may not cancel runs of this workflow.",
        )
        data = parsed(s.RunCancelInput, request.data)
        reason = data.get("reason") or f"cancelled by {request.user.get_username()}"
        run_cancel(run_id=run.pk, reason=reason, by=request.user)
        run = selectors.run_get_visible(user=request.user, run_id=run.pk, with_steps=True)
        return Response(s.RunDetailSerializer(run).data)


class RunRetryView(generics.GenericAPIView):
    queryset = Run.objects.none()
    serializer_class = s.RunDetailSerializer

    @extend_schema(
        summary="Retry a failed run: its failed steps get a fresh attempt and it runs on",
        description="409 when the run is not FAILED (a second retry finds it RUNNING; a "
        "cancelled run is never retried) or a retry would fail the same way.",
        request=s.RunRetryInput,
        responses={200: s.RunDetailSerializer, **api_errors(400, 403, 404, 409)},
    )
    def post(self, request, run_id):
        run = selectors.run_get_visible(user=request.user, run_id=run_id)
        require(
            selectors.workflow_permits(request.user, run.workflow, "run_workflow"),
            "You may not retry runs of this workflow.",
        )
        data = parsed(s.RunRetryInput, request.data)
        run_retry(run_id=run.pk, by=request.user, step_id=data.get("step"))
        run = selectors.run_get_visible(user=request.user, run_id=run.pk, with_steps=True)
        return Response(s.RunDetailSerializer(run).data)
