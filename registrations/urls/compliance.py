from django.urls import path

from registrations.middleware import not_user_activity, session_probe
from registrations.views import compliance as compliance_views

urlpatterns = [
    path("audit/", compliance_views.AuditListView.as_view(), name="audit-list"),
    path("audit/export/", compliance_views.AuditExportView.as_view(), name="audit-export"),
    path("audit/verify/", compliance_views.AuditVerifyView.as_view(), name="audit-verify"),
    path("audit/jobs/<int:pk>/", compliance_views.AuditJobView.as_view(), name="audit-job"),
    # Polled by the job page's script: not activity that keeps an idle session alive, and a
    # session that ended there gets JSON, not the sign-in page.
    path(
        "audit/jobs/<int:pk>/status/",
        not_user_activity(session_probe(compliance_views.AuditJobStatusView.as_view())),
        name="audit-job-status",
    ),
    path(
        "audit/jobs/<int:pk>/download/",
        compliance_views.AuditJobDownloadView.as_view(),
        name="audit-job-download",
    ),
    path("breaches/", compliance_views.BreachListView.as_view(), name="breach-list"),
    path("breaches/new/", compliance_views.BreachCreateView.as_view(), name="breach-new"),
    path("breaches/<int:pk>/", compliance_views.BreachDetailView.as_view(), name="breach-detail"),
    path("breaches/<int:pk>/edit/", compliance_views.BreachEditView.as_view(), name="breach-edit"),
]
