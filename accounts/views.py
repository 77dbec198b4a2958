"""Signing in to the dashboard (sessions; the API uses JWTs, the admin its own sign-in page)."""

from django.contrib.auth.views import LoginView
from django.shortcuts import redirect
from django.utils.decorators import method_decorator

from accounts.lockout import sign_in_rate_limited


@method_decorator(sign_in_rate_limited, name="dispatch")
class SignInView(LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True


def home(request):
    """`/`: the dashboard for a signed-in user, the sign-in page for anyone else."""
    return redirect("dashboard:queue" if request.user.is_authenticated else "login")
