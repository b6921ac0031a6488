from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import path, register_converter
from django.views.i18n import set_language

from registrations import views
from registrations.forms import SignInForm
from registrations.middleware import second_factor_not_required
from registrations.models import REFERENCE_ALPHABET


class ReferenceConverter:
    """A registration reference as printed on the receipt: XXXXX-XXXXX."""

    regex = f"[{REFERENCE_ALPHABET}]{{5}}-[{REFERENCE_ALPHABET}]{{5}}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ReferenceConverter, "reference")

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon),
    path(
        "login/",
        auth_views.LoginView.as_view(
            authentication_form=SignInForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    # Signing out needs no second factor: the way out of its page.
    path("logout/", second_factor_not_required(views.SignOutView.as_view()), name="logout"),
    # The language can be chosen on the sign-in page too.
    path("language/", login_not_required(set_language), name="set_language"),
    path("decisions/seen/", views.decisions_seen, name="decisions-seen"),
    # The counter flow. Identity values travel in POST bodies only, never in these paths.
    path("counter/new/", views.NewRegistrationView.as_view(), name="counter-new"),
    path("counter/find/", views.FindView.as_view(), name="counter-find"),
    path("counter/<reference:reference>/", views.RecordView.as_view(), name="counter-record"),
    path(
        "counter/<reference:reference>/resume/", views.ResumeView.as_view(), name="counter-resume"
    ),
    path(
        "counter/<reference:reference>/materials/",
        views.MaterialsView.as_view(),
        name="counter-materials",
    ),
    path(
        "counter/<reference:reference>/channel/",
        views.ChannelView.as_view(),
        name="counter-channel",
    ),
    path(
        "counter/<reference:reference>/identity/",
        views.IdentityView.as_view(),
        name="counter-identity",
    ),
    path(
        "counter/<reference:reference>/receipt/",
        views.ReceiptView.as_view(),
        name="counter-receipt",
    ),
    path(
        "counter/<reference:reference>/document/<int:pk>/",
        views.DocumentView.as_view(),
        name="counter-document",
    ),
    path(
        "counter/<reference:reference>/update/",
        views.UpdateRequestView.as_view(),
        name="counter-update",
    ),
    path(
        "counter/<reference:reference>/terminate/",
        views.TerminationRequestView.as_view(),
        name="counter-terminate",
    ),
    path("counter/<reference:reference>/discard/", views.discard_draft, name="counter-discard"),
]
