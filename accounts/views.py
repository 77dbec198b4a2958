"""Signing in to the dashboard (sessions; the API uses JWTs, the admin its own sign-in page)."""

from django.contrib.auth.views import LoginView
from django.shortcuts import redirect


class SignInView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def home(request):
    """`/`: the dashboard for a signed-in user, the sign-in page for anyone else."""
    return redirect("dashboard:queue" if request.user.is_authenticated else "login")
