from django.urls import path
from django.views.generic import RedirectView

from registrations.views import counter as views

urlpatterns = [
    # The counter flow. Identity values travel in POST bodies only, never in these paths.
    path("new/", views.NewRegistrationView.as_view(), name="counter-new"),
    path("find/", views.FindView.as_view(), name="counter-find"),
    path("records/", views.RecordListView.as_view(), name="counter-records"),
    path("<reference:reference>/", views.RecordView.as_view(), name="counter-record"),
    path("<reference:reference>/resume/", views.ResumeView.as_view(), name="counter-resume"),
    path(
        "<reference:reference>/materials/",
        views.MaterialsView.as_view(),
        name="counter-materials",
    ),
    path(
        "<reference:reference>/channel/",
        views.ChannelView.as_view(),
        name="counter-channel",
    ),
    path(
        "<reference:reference>/identity/",
        views.IdentityView.as_view(),
        name="counter-identity",
    ),
    # The identity step's early checks: the values typed are posted, never put in this path.
    path(
        "<reference:reference>/identity/check/",
        views.EarlyCheckView.as_view(),
        name="counter-identity-check",
    ),
    path(
        "<reference:reference>/receipt/",
        views.ReceiptView.as_view(),
        name="counter-receipt",
    ),
    # Copies moved to /documents/ (they are not the counter's alone): old links still open them.
    path(
        "<reference:reference>/document/<int:pk>/",
        RedirectView.as_view(pattern_name="document-copy", query_string=True),
        name="counter-document",
    ),
    path(
        "<reference:reference>/update/",
        views.UpdateRequestView.as_view(),
        name="counter-update",
    ),
    path(
        "<reference:reference>/terminate/",
        views.TerminationRequestView.as_view(),
        name="counter-terminate",
    ),
    # A customer of any store: opened for service, a lost SIM, a replacement SIM.
    path(
        "<reference:reference>/service/",
        views.ServiceView.as_view(),
        name="counter-service",
    ),
    path(
        "<reference:reference>/loss/",
        views.LossReportView.as_view(),
        name="counter-loss",
    ),
    path(
        "<reference:reference>/replace/",
        views.ReplacementRequestView.as_view(),
        name="counter-replace",
    ),
    # The customer's own report: the identity check is posted, the report is its response.
    path(
        "<reference:reference>/subject-report/",
        views.SubjectReportView.as_view(),
        name="counter-subject-report",
    ),
    path("<reference:reference>/discard/", views.discard_draft, name="counter-discard"),
]
