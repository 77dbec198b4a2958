"""/metrics for Prometheus, shown only to a scraper with the bearer token or to staff."""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import CollectorRegistry, generate_latest

# Collectors that read the database when scraped (a count of open rows is the same whichever
# process counts it), which prometheus_client's multiprocess files cannot carry.
_scraped = CollectorRegistry(auto_describe=False)


def scrape_collector_register(collector) -> None:
    _scraped.register(collector)


def observer(request: HttpRequest) -> bool:
    """Whether the caller may see how the installation is doing: a scraper sending
    `Authorization: Bearer $METRICS_TOKEN`, or a staff session."""
    token = settings.METRICS_TOKEN
    sent = request.headers.get("Authorization", "")
    scraper = bool(token) and hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())
    return scraper or request.user.is_staff


def metrics(request: HttpRequest) -> HttpResponse:
    """The django-prometheus export; 404 (like anything else not visible) to everyone else.

    Metrics name workflows, so they are not public: Prometheus sends
    `Authorization: Bearer $METRICS_TOKEN`, people log in as staff.
    """
    if not observer(request):
        raise Http404
    response = ExportToDjangoView(request)
    response.content += generate_latest(_scraped)
    return response
