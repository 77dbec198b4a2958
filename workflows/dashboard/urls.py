from django.urls import path

from workflows.dashboard import views

urlpatterns = [
    path("runs/", views.runs, name="runs"),
    path("runs/<uuid:run_id>/", views.run, name="run"),
    path("runs/<uuid:run_id>/panels/<slug:name>/", views.run_panel, name="run-panel"),
]
