"""/metrics for Prometheus, shown only to a scraper with the bearer token or to staff."""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView


def metrics(request: HttpRequest) -> HttpResponse:
    """The django-prometheus export; 404 (like anything else not visible) to everyone else.

    Metrics name workflows, so they are not public: Prometheus sends
    `Authorization: Bearer $METRICS_TOKEN`, people log in as staff.
    """
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    scraper = bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    if not (scraper or request.user.is_staff):
        raise Http404
    return ExportToDjangoView(request)
