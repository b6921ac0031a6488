"""Pages every role shares: the home page, signing out, the access rule of every page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView

from registrations import roles, selectors, services
from registrations.audit import Origin


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
            counter = selectors.counter_home_for(user=user)
            counter["decided"] = selectors.decisions_since_last_look(user=user)
            counter["decided_changes"] = selectors.change_decisions_since_last_look(user=user)
            context["counter"] = counter
            # The lists name records of the user's stores: showing them is a read like any other.
            shown = [r.reference for r in (*counter["drafts"], *counter["returned"])]
            shown += [r.reference for r in counter["decided"]]
            shown += [c.registration.reference for c in counter["decided_changes"]]
            services.registration_view_list(
                actor=user,
                origin=Origin.of(self.request),
                view="counter_home",
                references=dict.fromkeys(shown),
            )
        if roles.allows(user, roles.REVIEW):
            context["review"] = selectors.review_home_for(user=user)
        if roles.allows(user, roles.BROWSE_AUDIT):
            context["audit"] = selectors.audit_home()
        return context


class SignOutView(auth_views.LogoutView):
    """Django's sign-out, saying so on the sign-in page it leads to."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, _("You are signed out."))
        return response


@require_POST
def decisions_seen(request: HttpRequest) -> HttpResponse:
    """The counter has looked at the decisions on its submissions."""
    if not roles.allows(request.user, roles.RECORD):
        raise PermissionDenied
    services.decisions_mark_seen(user=request.user)
    return redirect("home")


@login_not_required
@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico, even when showing a document copy."""
    return redirect(static("registrations/favicon.svg"), permanent=True)
