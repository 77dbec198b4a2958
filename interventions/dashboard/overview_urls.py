from django.urls import path

from interventions.dashboard import overview_page

urlpatterns = [
    path("overview/", overview_page.overview, name="overview"),
]
