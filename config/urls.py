from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import IsAuthenticated

from accounts.api.auth import SignOutView, TokenObtainView, TokenRefreshView
from accounts.lockout import sign_in_rate_limited
from accounts.views import SignInView, home
from config import health, metrics

signed_in = [IsAuthenticated]  # the schema describes the API to its users, not to everyone

api = [
    path("auth/token/", TokenObtainView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("auth/logout/", SignOutView.as_view(), name="token-sign-out"),
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

dashboard = [
    path("", include("interventions.dashboard.urls")),
    path("", include("workflows.dashboard.urls")),
    path("", include("interventions.dashboard.overview_urls")),
]

urlpatterns = [
    path("", home, name="home"),
    path("login/", SignInView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("dashboard/", include((dashboard, "dashboard"))),
    path("admin/login/", sign_in_rate_limited(admin.site.login)),  # before the admin's own
    path("admin/", admin.site.urls),
    path("api/", include((api, "api"))),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
]
