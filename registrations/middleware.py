from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.core.signals import request_finished
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import SimpleLazyObject, empty
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from registrations import metrics, roles, selectors
from simreg import logs


class NoStoreMiddleware:
    """Pages of signed-in staff may show identity data: no browser or proxy may keep a copy."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            add_never_cache_headers(response)
            response.headers["Cache-Control"] = "no-store, no-cache, must-revalidate, private"
        return response


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    """Only this site's own scripts, styles and images; no inline script, no framing.

    Pages carry no inline script or style, so the policy needs no nonce.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        return response


# Second factor -----------------------------------------------------------------------------------


def second_factor_not_required(view: Callable) -> Callable:
    """Mark a view that a signed-in user may reach before passing the second factor.

    Only the second-factor pages, sign-out and the session probe: none shows any record data.
    """
    view.second_factor_required = False
    return view


class SecondFactorMiddleware:
    """No page for a user who needs a second factor until they passed it, the admin included.

    Such a user is sent to "enter your code", or to enrolment when they have no device yet.
    Pages anyone may see without signing in (the sign-in page, the health check, the language
    switch) stay reachable; static files are served before any view.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs) -> HttpResponse | None:
        user = request.user
        if not user.is_authenticated or user.is_verified():
            return None
        if not getattr(view_func, "second_factor_required", True):
            return None
        if not getattr(view_func, "login_required", True):
            return None
        if not roles.needs_second_factor(user):
            return None
        enrolled = selectors.second_factor_device_for(user=user) is not None
        page = reverse("second-factor" if enrolled else "second-factor-enrol")
        # A GET comes back to where it was going; a POST cannot be replayed.
        return redirect_to_login(request.get_full_path() if request.method == "GET" else "", page)


# Idle sign-out ---------------------------------------------------------------------------------

LAST_ACTIVITY_KEY = "simreg_last_activity"
SIGNED_IN_AT_KEY = "simreg_signed_in_at"
# The session row is rewritten at most this often to record activity, not on every request:
# an idle limit of minutes does not need a write per click.
ACTIVITY_RESOLUTION_SECONDS = 30
# Why a session was ended, read by the sign-out audit receiver (registrations/sign_in.py).
SIGN_OUT_DETAILS_ATTRIBUTE = "simreg_sign_out_details"


def not_user_activity(view: Callable) -> Callable:
    """Mark a view whose requests do not count as activity (the idle warning's own polling)."""
    view.counts_as_activity = False
    return view


def session_probe(view: Callable) -> Callable:
    """Mark a view called by scripts: a session that ends there gets JSON, not a redirect."""
    view.session_probe = True
    return view


def idle_limit_seconds() -> int:
    return max(0, settings.SESSION_IDLE_MINUTES) * 60


def idle_seconds_left(request: HttpRequest) -> int | None:
    """Seconds until the session ends for lack of activity; None when there is no limit."""
    limit = idle_limit_seconds()
    last = request.session.get(LAST_ACTIVITY_KEY)
    if not limit or not isinstance(last, int):
        return None
    return max(0, last + limit - int(time.time()))


def record_activity(request: HttpRequest) -> None:
    request.session[LAST_ACTIVITY_KEY] = int(time.time())


def start_session_clocks(request: HttpRequest) -> None:
    """At sign-in, in the session being written anyway: no extra write on the next request."""
    now = int(time.time())
    request.session[SIGNED_IN_AT_KEY] = now
    request.session[LAST_ACTIVITY_KEY] = now


class IdleSignOutMiddleware:
    """Sign out a session left without a request for SESSION_IDLE_MINUTES, and any session
    SESSION_COOKIE_AGE after sign-in.

    The session cookie's own age cannot do either: every save of the session (which recording
    activity is) pushes its expiry forward, so both times are kept in the session itself.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not request.user.is_authenticated:
            return None
        session = request.session
        now = int(time.time())
        limit = idle_limit_seconds()
        last = session.get(LAST_ACTIVITY_KEY)
        started = session.get(SIGNED_IN_AT_KEY)
        if limit and isinstance(last, int) and now - last >= limit:
            return self.sign_out(
                request, view_func, {"reason": "idle", "idle_minutes": limit // 60}
            )
        if isinstance(started, int) and now - started >= settings.SESSION_COOKIE_AGE:
            return self.sign_out(
                request,
                view_func,
                {"reason": "session_age", "seconds": settings.SESSION_COOKIE_AGE},
            )
        if not isinstance(started, int):
            session[SIGNED_IN_AT_KEY] = now
        counts = getattr(view_func, "counts_as_activity", True)
        if not isinstance(last, int) or (counts and now - last >= ACTIVITY_RESOLUTION_SECONDS):
            session[LAST_ACTIVITY_KEY] = now
        return None

    def sign_out(self, request, view_func, details: dict) -> HttpResponse | None:
        setattr(request, SIGN_OUT_DETAILS_ATTRIBUTE, details)
        logout(request)
        if details["reason"] == "idle":
            minutes = details["idle_minutes"]
            messages.info(
                request,
                ngettext(
                    "You were signed out after %(minutes)d minute without activity.",
                    "You were signed out after %(minutes)d minutes without activity.",
                    minutes,
                )
                % {"minutes": minutes},
            )
        else:
            messages.info(request, _("Your session has ended. Sign in again to continue."))
        if getattr(view_func, "session_probe", False):
            return JsonResponse({"signed_in": False}, status=401)
        if not getattr(view_func, "login_required", True):
            # The sign-in page itself: show it, with the message.
            return None
        return redirect_to_login(
            request.get_full_path() if request.method == "GET" else "", settings.LOGIN_URL
        )


request_logger = logging.getLogger("simreg.request")


class RequestLogMiddleware:
    """First in line: gives each request its id (X-Request-ID from the proxy when it is a safe
    token, else a new one), returned in the response; logs the request once answered and
    counts its latency (registrations.metrics) by view name, never by path.

    The log line holds the method, the path without its query string, the status, the duration
    and the signed-in user's id: no header, body or form value (simreg.logs).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
        # Kept until the response is closed (request_finished): Django logs an error response
        # ("Not Found: ...") after the middleware has returned it.
        logs.request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        response[logs.REQUEST_ID_HEADER] = request_id
        metrics.request_observed(
            view=_view_name(request), status=response.status_code, seconds=seconds
        )
        request_logger.info(
            "%s %s %s",
            request.method,
            request.path[: logs.PATH_MAX],
            response.status_code,
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(seconds * 1000, 1),
                "user_id": _user_id(request),
            },
        )
        return response


@receiver(request_finished, dispatch_uid="simreg-forget-request-id")
def _forget_request_id(sender, **kwargs) -> None:
    logs.request_id_var.set("")


def _view_name(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"


def _user_id(request: HttpRequest) -> int | None:
    """The signed-in user's id, when the request already loaded its user (no query for it)."""
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty:
        return None
    return user.pk if user is not None and user.is_authenticated else None
