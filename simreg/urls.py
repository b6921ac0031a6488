from django.contrib import admin
from django.urls import include, path

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
    path("account/", include("registrations.urls.accounts")),
    path("counter/", include("registrations.urls.counter")),
    path("documents/", include("registrations.urls.documents")),
    path("review/", include("registrations.urls.review")),
    path("compliance/", include("registrations.urls.compliance")),
    path("", include("registrations.urls.operations")),
    path("", include("registrations.urls.common")),
]
