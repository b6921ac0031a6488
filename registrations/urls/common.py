from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import path
from django.views.i18n import set_language

from registrations.forms.accounts import SignInForm
from registrations.middleware import second_factor_not_required
from registrations.views import common as views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
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
]
