from django.urls import path

from registrations.views import documents as views

urlpatterns = [
    path("<reference:reference>/<int:pk>/", views.DocumentView.as_view(), name="document-copy"),
]
