from django.urls import path

from interventions.api import views

urlpatterns = [
    path("interventions/", views.InterventionsView.as_view(), name="intervention-list"),
    path("interventions/<uuid:pk>/", views.InterventionView.as_view(), name="intervention-detail"),
    path("interventions/<uuid:pk>/claim/", views.ClaimView.as_view(), name="intervention-claim"),
    path(
        "interventions/<uuid:pk>/release/", views.ReleaseView.as_view(), name="intervention-release"
    ),
    path(
        "interventions/<uuid:pk>/resolve/", views.ResolveView.as_view(), name="intervention-resolve"
    ),
    path(
        "interventions/<uuid:pk>/delegate/",
        views.DelegateView.as_view(),
        name="intervention-delegate",
    ),
    path(
        "interventions/<uuid:pk>/comment/", views.CommentView.as_view(), name="intervention-comment"
    ),
]
