from django.urls import path

from accounts.api import views

urlpatterns = [path("audit/", views.AuditView.as_view(), name="audit-list")]
