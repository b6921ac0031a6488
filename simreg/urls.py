from django.contrib import admin
from django.urls import include, path

from registrations.metrics_views import metrics_view

# The admin's "view on site" shortcut (admin/r/<type>/<id>/) would turn the id of any object
# with a page, a registration's included, into that page's address: not served.
_admin_urls, _admin_app, _admin_site = admin.site.urls
admin_urls = (
    [url for url in _admin_urls if getattr(url, "name", None) != "view_on_site"],
    _admin_app,
    _admin_site,
)

urlpatterns = [
    path("admin/", admin_urls),
    path("metrics", metrics_view, name="metrics"),
    path("account/", include("registrations.accounts_urls")),
    path("compliance/", include("registrations.compliance_urls")),
    path("review/", include("registrations.review_urls")),
    path("", include("registrations.urls")),
]
