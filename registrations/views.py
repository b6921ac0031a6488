"""Pages. Views are thin: permissions and scoping here, reads in selectors, writes in services."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from registrations import roles, selectors
from registrations.checks import key_problems


class RoleRequiredMixin(AccessMixin):
    """Deny by default: a page names the permission its role needs."""

    required_permission: str = ""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not self.has_role(request.user):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    def has_role(self, user) -> bool:
        return bool(self.required_permission) and roles.allows(user, self.required_permission)


class HomeView(RoleRequiredMixin, TemplateView):
    """One home page per role; a user with several roles sees each part."""

    template_name = "registrations/home.html"

    def has_role(self, user) -> bool:
        return user.is_superuser or any(
            roles.allows(user, perm) for perm in (roles.RECORD, roles.REVIEW, roles.BROWSE_AUDIT)
        )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        if roles.allows(user, roles.RECORD):
            context["counter"] = selectors.counter_home_for(user=user)
        if roles.allows(user, roles.REVIEW):
            context["review"] = selectors.review_home_for(user=user)
        if roles.allows(user, roles.BROWSE_AUDIT):
            context["audit"] = selectors.audit_home()
        return context


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    """For load balancers: database reachable, keys able to read the stored data. No secrets."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except DatabaseError:
        database = "unavailable"
    keys = "ok" if database == "ok" and not key_problems() else "error"
    healthy = database == "ok" and keys == "ok"
    return JsonResponse({"database": database, "keys": keys}, status=200 if healthy else 503)
