from django.urls import path

from registrations.views import review as views

urlpatterns = [
    path("", views.ReviewQueueView.as_view(), name="review-queue"),
    path("dashboard/", views.DashboardView.as_view(), name="review-dashboard"),
    path("notifications/", views.NotificationListView.as_view(), name="review-notifications"),
    path("notifications/retry/", views.notification_retry, name="review-notifications-retry"),
    path("<reference:reference>/", views.ReviewDetailView.as_view(), name="review-detail"),
    path("<reference:reference>/reveal/", views.RevealView.as_view(), name="review-reveal"),
    path("<reference:reference>/decide/", views.decide, name="review-decide"),
    path(
        "<reference:reference>/changes/<int:change_id>/reveal/",
        views.RevealChangeView.as_view(),
        name="review-reveal-change",
    ),
    path(
        "<reference:reference>/changes/<int:change_id>/decide/",
        views.decide_change,
        name="review-decide-change",
    ),
]
