from django.urls import path

from registrations.views import accounts as views

urlpatterns = [
    path("second-factor/", views.SecondFactorView.as_view(), name="second-factor"),
    path(
        "second-factor/recovery/", views.RecoveryCodeView.as_view(), name="second-factor-recovery"
    ),
    path("second-factor/enrol/", views.EnrolView.as_view(), name="second-factor-enrol"),
    path("session/", views.session_status, name="session-status"),
    path("session/keep-alive/", views.session_keep_alive, name="session-keep-alive"),
    path("staff/", views.StaffListView.as_view(), name="staff-list"),
    path("staff/<int:pk>/password/", views.StaffPasswordView.as_view(), name="staff-password"),
    path(
        "staff/<int:pk>/second-factor/reset/",
        views.StaffSecondFactorResetView.as_view(),
        name="staff-second-factor-reset",
    ),
]
