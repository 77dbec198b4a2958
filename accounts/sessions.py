"""The dashboard's sign-in check. A page request without a session is sent to the sign-in page
as usual; an htmx request (a live part reloading) gets 401 and HX-Redirect instead, so htmx
sends the whole page to sign in rather than swapping the sign-in page into a table or panel."""

from functools import wraps
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import resolve_url
from django.utils.http import urlencode


def dashboard_login_required(view):
    """login_required, answering an htmx request with 401 and HX-Redirect to the sign-in page,
    whose `next` is the page the part is on (HX-Current-URL), not the part."""
    page_view = login_required(view)

    @wraps(view)
    def checked(request, *args, **kwargs):
        if request.user.is_authenticated or not request.headers.get("HX-Request"):
            return page_view(request, *args, **kwargs)
        response = HttpResponse("Your session has ended: sign in again.", status=401)
        login = resolve_url(settings.LOGIN_URL)
        response["HX-Redirect"] = f"{login}?{urlencode({'next': _page_of(request)})}"
        return response

    return checked


def _page_of(request) -> str:
    """The path (and query) of the page an htmx request came from; only a path, so `next`
    cannot lead off the site."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    if not current.path.startswith("/"):
        return request.path
    return current.path + (f"?{current.query}" if current.query else "")
