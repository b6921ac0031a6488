from django.urls import path

from registrations import compliance_views

urlpatterns = [
    path("audit/", compliance_views.AuditListView.as_view(), name="audit-list"),
    path("audit/export/", compliance_views.AuditExportView.as_view(), name="audit-export"),
    path("audit/verify/", compliance_views.AuditVerifyView.as_view(), name="audit-verify"),
]
