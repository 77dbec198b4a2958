from django.urls import path

from workflows.api import stream, views

urlpatterns = [
    path("workflows/", views.WorkflowsView.as_view(), name="workflow-list"),
    path("workflows/<slug:slug>/", views.WorkflowView.as_view(), name="workflow-detail"),
    path(
        "workflows/<slug:slug>/versions/",
        views.WorkflowVersionsView.as_view(),
        name="workflow-versions",
    ),
    path("workflows/<slug:slug>/runs/", views.WorkflowRunsView.as_view(), name="workflow-runs"),
    path("runs/", views.RunsView.as_view(), name="run-list"),
    path("runs/<uuid:run_id>/", views.RunView.as_view(), name="run-detail"),
    path("runs/<uuid:run_id>/steps/", views.RunStepsView.as_view(), name="run-steps"),
    path("runs/<uuid:run_id>/events/", views.RunEventsView.as_view(), name="run-events"),
    path(
        "runs/<uuid:run_id>/events/stream/",
        stream.RunEventsStreamView.as_view(),
        name="run-events-stream",
    ),
    path("runs/<uuid:run_id>/cancel/", views.RunCancelView.as_view(), name="run-cancel"),
    path("runs/<uuid:run_id>/retry/", views.RunRetryView.as_view(), name="run-retry"),
]
