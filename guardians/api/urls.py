from django.urls import path

from guardians.api import views

urlpatterns = [
    path("guardians/", views.GuardiansView.as_view(), name="guardian-list"),
    path("guardians/<slug:slug>/", views.GuardianView.as_view(), name="guardian-detail"),
    path(
        "guardians/<slug:slug>/versions/",
        views.GuardianVersionsView.as_view(),
        name="guardian-versions",
    ),
    path(
        "guardians/<slug:slug>/evaluate/",
        views.GuardianEvaluateView.as_view(),
        name="guardian-evaluate",
    ),
    path(
        "runs/<uuid:run_id>/decisions/",
        views.RunDecisionsView.as_view(),
        name="run-decisions",
    ),
]
