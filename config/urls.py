from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from config import health, metrics

signed_in = [IsAuthenticated]  # the schema describes the API to its users, not to everyone

api = [
    path("auth/token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("schema/", SpectacularAPIView.as_view(permission_classes=signed_in), name="schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=signed_in),
        name="docs",
    ),
    path("", include("workflows.api.urls")),
    path("", include("agents.api.urls")),
    path("", include("interventions.api.urls")),
    path("", include("guardians.api.urls")),
    path("", include("accounts.api.urls")),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include((api, "api"))),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
