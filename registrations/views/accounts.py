"""Sign-in's second step (code, recovery code, enrolment), the session's keep-alive, and the
staff a supervisor looks after (new password, second factor reset)."""

from __future__ import annotations

import base64

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth.forms import SetPasswordForm
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_POST
from django.views.generic import TemplateView
from django_otp import login as otp_login

from registrations import roles, selectors, services
from registrations.audit import Origin
from registrations.forms.accounts import RecoveryCodeForm, SecondFactorCodeForm
from registrations.middleware import (
    idle_seconds_left,
    not_user_activity,
    record_activity,
    second_factor_not_required,
    session_probe,
)
from registrations.models import User
from registrations.services.second_factor import RECOVERY_CODE, TOTP, CodeCheck
from registrations.views.common import RoleRequiredMixin


def _next_url(request: HttpRequest) -> str:
    """Where to go once done: a page of this site named in `next`, else the home page."""
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    # A path of this site only: nothing `redirect` could take for a view name or another host.
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse("home")


def _with_next(request: HttpRequest, name: str) -> HttpResponse:
    return redirect_to_login(_next_url(request), reverse(name))


def _passed(request: HttpRequest, device) -> None:
    """The session has passed the second factor; a new session key, as at any change of
    privilege, so that a key seen before this step is worth nothing after it."""
    otp_login(request, device)
    request.session.cycle_key()
    record_activity(request)


def _code_refused(form, check: CodeCheck, field: str, wrong: str) -> None:
    if check.wait_seconds:
        form.add_error(
            None,
            ngettext(
                "Too many wrong codes. Wait %(seconds)d second, then try again.",
                "Too many wrong codes. Wait %(seconds)d seconds, then try again.",
                check.wait_seconds,
            )
            % {"seconds": check.wait_seconds},
        )
    else:
        form.add_error(field, wrong)


@method_decorator(second_factor_not_required, name="dispatch")
@method_decorator(sensitive_post_parameters(), name="dispatch")
class SecondFactorPage(View):
    """A page of the sign-in's second step: only for a signed-in user who has not passed it."""

    template_name = ""

    def dispatch(self, request, *args, **kwargs):
        if not roles.needs_second_factor(request.user):
            raise PermissionDenied
        if request.user.is_verified():
            return HttpResponseRedirect(_next_url(request))
        return self.redirect_if_other_step(request) or super().dispatch(request, *args, **kwargs)

    def redirect_if_other_step(self, request: HttpRequest) -> HttpResponse | None:
        """The other page of the second step this user needs, if not this one."""
        if selectors.second_factor_device_for(user=request.user) is None:
            return _with_next(request, "second-factor-enrol")
        return None

    def render(self, request: HttpRequest, **context) -> HttpResponse:
        context.setdefault("next", _next_url(request))
        return render(request, self.template_name, context)


class SecondFactorView(SecondFactorPage):
    """Enter your code: the 6-digit code from the authenticator app."""

    template_name = "registrations/accounts/second_factor.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(request, form=SecondFactorCodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SecondFactorCodeForm(request.POST)
        if form.is_valid():
            check = services.second_factor_verify(
                user=request.user,
                code=form.cleaned_data["otp_token"],
                method=TOTP,
                origin=Origin.of(request),
            )
            if check.ok:
                _passed(request, check.device)
                return HttpResponseRedirect(_next_url(request))
            _code_refused(
                form,
                check,
                "otp_token",
                _(
                    "That code is not right. Enter the code the app shows now; it changes "
                    "every 30 seconds."
                ),
            )
        return self.render(request, form=form)


class RecoveryCodeView(SecondFactorPage):
    """A recovery code instead of the app, when the phone is lost: each code works once."""

    template_name = "registrations/accounts/second_factor_recovery.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render(request, form=RecoveryCodeForm(), **self.codes(request))

    def post(self, request: HttpRequest) -> HttpResponse:
        form = RecoveryCodeForm(request.POST)
        if form.is_valid():
            check = services.second_factor_verify(
                user=request.user,
                code=form.cleaned_data["recovery_code"],
                method=RECOVERY_CODE,
                origin=Origin.of(request),
            )
            if check.ok:
                _passed(request, check.device)
                left = selectors.second_factor_recovery_codes_left(user=request.user)
                messages.warning(
                    request,
                    ngettext(
                        "You signed in with a recovery code; %(left)d remains. If your phone is "
                        "lost, ask a supervisor or an administrator to reset your second factor.",
                        "You signed in with a recovery code; %(left)d remain. If your phone is "
                        "lost, ask a supervisor or an administrator to reset your second factor.",
                        left,
                    )
                    % {"left": left},
                )
                return HttpResponseRedirect(_next_url(request))
            _code_refused(
                form,
                check,
                "recovery_code",
                _("That recovery code is not right, or it was used already."),
            )
        return self.render(request, form=form, **self.codes(request))

    def codes(self, request: HttpRequest) -> dict:
        return {"codes_left": selectors.second_factor_recovery_codes_left(user=request.user)}


def _qr_svg(data: str) -> str:
    """The QR code as inline SVG: drawn with presentation attributes only (no style attribute,
    no image URL), so the strict Content-Security-Policy lets it through."""
    image = qrcode.make(
        data,
        image_factory=qrcode.image.svg.SvgPathFillImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        border=2,
    )
    return image.to_string(encoding="unicode")


def _grouped(text: str, size: int = 4) -> str:
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


class EnrolView(SecondFactorPage):
    """First sign-in with a second factor: scan the QR code, confirm with a code, then see the
    recovery codes, once."""

    template_name = "registrations/accounts/second_factor_enrol.html"

    def redirect_if_other_step(self, request: HttpRequest) -> HttpResponse | None:
        # A new authenticator only after a reset: otherwise a password alone could add one.
        if selectors.second_factor_device_for(user=request.user) is not None:
            return _with_next(request, "second-factor")
        return None

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.render_enrolment(request, SecondFactorCodeForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SecondFactorCodeForm(request.POST)
        if form.is_valid():
            check = services.second_factor_enrol_confirm(
                user=request.user, code=form.cleaned_data["otp_token"], origin=Origin.of(request)
            )
            if check.ok:
                _passed(request, check.device)
                # Shown in this response only: not kept in the session, not shown again.
                return render(
                    request,
                    "registrations/accounts/second_factor_recovery_codes.html",
                    {
                        "codes": [f"{code[:4]}-{code[4:]}" for code in check.recovery_codes],
                        "next": _next_url(request),
                    },
                )
            _code_refused(
                form,
                check,
                "otp_token",
                _(
                    "That code is not right. Check that the app shows an entry for simreg "
                    "and enter its current code."
                ),
            )
        return self.render_enrolment(request, form)

    def render_enrolment(self, request: HttpRequest, form: SecondFactorCodeForm) -> HttpResponse:
        device = services.second_factor_enrolment_start(user=request.user)
        secret = base64.b32encode(device.bin_key).decode()
        return self.render(
            request,
            form=form,
            # Built here from the device, never from input: safe to place as markup.
            qr_svg=mark_safe(_qr_svg(device.config_url)),  # noqa: S308
            secret=_grouped(secret),
        )


# The session: how long it has left without activity, and "stay signed in". ---------------------


@require_GET
@not_user_activity
@session_probe
@second_factor_not_required
def session_status(request: HttpRequest) -> JsonResponse:
    """For the idle warning: seconds left. Polling this is not activity; it shows no data."""
    if not roles.has_any_role(request.user):
        raise PermissionDenied
    return JsonResponse({"signed_in": True, "seconds_left": idle_seconds_left(request)})


@require_POST
@session_probe
@second_factor_not_required
def session_keep_alive(request: HttpRequest) -> HttpResponse:
    """Stay signed in: counts as activity, and shows nothing."""
    if not roles.has_any_role(request.user):
        raise PermissionDenied
    record_activity(request)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"signed_in": True, "seconds_left": idle_seconds_left(request)})
    return HttpResponseRedirect(_next_url(request))


# Counter staff of a supervisor's stores: new password, second factor reset. -------------------


class StaffMixin(RoleRequiredMixin):
    required_permission = roles.REVIEW

    def member(self, request: HttpRequest, pk: int) -> User:
        """One of the counter staff the user looks after, or 404: others do not exist here."""
        return get_object_or_404(selectors.staff_list_for_supervisor(user=request.user), pk=pk)


class StaffListView(StaffMixin, TemplateView):
    template_name = "registrations/accounts/staff_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        staff = list(
            selectors.staff_list_for_supervisor(user=self.request.user)
            .prefetch_related("stores")
            .order_by("username")
        )
        enrolled = selectors.second_factor_enrolled_user_ids(users=staff)
        context["staff"] = [(user, user.pk in enrolled) for user in staff]
        return context


@method_decorator(sensitive_post_parameters("new_password1", "new_password2"), name="dispatch")
class StaffPasswordView(StaffMixin, View):
    template_name = "registrations/accounts/staff_password.html"

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(request, pk)
        return self.render(request, member, SetPasswordForm(member))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(request, pk)
        form = SetPasswordForm(member, request.POST)
        if form.is_valid():
            services.user_password_reset(
                user=member,
                password=form.cleaned_data["new_password1"],
                actor=request.user,
                origin=Origin.of(request),
            )
            messages.success(
                request,
                _(
                    "%(username)s has a new password. Tell them in person, and never by "
                    "message or e-mail."
                )
                % {"username": member.get_username()},
            )
            return redirect("staff-list")
        return self.render(request, member, form)

    def render(self, request: HttpRequest, member: User, form: SetPasswordForm) -> HttpResponse:
        return render(request, self.template_name, {"member": member, "form": form})


class StaffSecondFactorResetView(StaffMixin, View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        member = self.member(request, pk)
        services.second_factor_reset(user=member, actor=request.user, origin=Origin.of(request))
        messages.success(
            request,
            _(
                "The second factor of %(username)s was reset: they set up their authenticator "
                "app again when they next need it."
            )
            % {"username": member.get_username()},
        )
        return redirect("staff-list")
