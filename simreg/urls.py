from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("compliance/", include("registrations.compliance_urls")),
    path("review/", include("registrations.review_urls")),
    path("", include("registrations.urls")),
]
