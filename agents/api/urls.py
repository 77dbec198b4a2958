from django.urls import path

from agents.api import views

urlpatterns = [
    path("providers/", views.ProvidersView.as_view(), name="provider-list"),
    path("providers/<slug:slug>/", views.ProviderView.as_view(), name="provider-detail"),
    path("providers/<slug:slug>/reset/", views.ProviderResetView.as_view(), name="provider-reset"),
    path("agents/", views.AgentsView.as_view(), name="agent-list"),
    path("agents/<slug:slug>/", views.AgentView.as_view(), name="agent-detail"),
    path("agents/<slug:slug>/versions/", views.AgentVersionsView.as_view(), name="agent-versions"),
    path("runs/<uuid:run_id>/llm-calls/", views.RunLLMCallsView.as_view(), name="run-llm-calls"),
]
