"""For the platform, not for people: the health check and the Prometheus metrics."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from registrations import health
from registrations.metrics import scrape_registry
from registrations.middleware import second_factor_not_required


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers. Readiness: the database, the private storage, the keys and the job
    worker's heartbeat, each "ok" or not (registrations.health), 503 unless all are. Liveness
    (`/healthz?live`): 200 as long as the process answers. No secrets, no identity data."""
    if "live" in request.GET:
        return JsonResponse({"process": "ok"})
    report = health.health_report()
    return JsonResponse(report, status=200 if health.healthy(report) else 503)


def _token_matches(request: HttpRequest, token: str) -> bool:
    scheme, _space, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@login_not_required
@second_factor_not_required
@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """For the scraper only: a bearer token (METRICS_TOKEN), never a browser's session.
    Without a configured token the page does not exist. It shows no record: no audit event."""
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404
    if not _token_matches(request, token):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
