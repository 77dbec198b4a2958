from django.urls import path

from interventions.dashboard import views

urlpatterns = [
    path("", views.queue, name="queue"),
    path("interventions/<uuid:intervention_id>/", views.intervention, name="intervention"),
]
