"""Choices more than one concern's forms offer."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# ISO 3166-1 alpha-2; ZZ is the code ISO leaves to users, here "another country or territory".
NATIONALITIES = [
    ("HK", _("Hong Kong")),
    ("CN", _("Mainland China")),
    ("MO", _("Macao")),
    ("TW", _("Taiwan")),
    ("AU", _("Australia")),
    ("CA", _("Canada")),
    ("FR", _("France")),
    ("DE", _("Germany")),
    ("IN", _("India")),
    ("ID", _("Indonesia")),
    ("JP", _("Japan")),
    ("KR", _("Korea, Republic of")),
    ("MY", _("Malaysia")),
    ("NP", _("Nepal")),
    ("NZ", _("New Zealand")),
    ("PK", _("Pakistan")),
    ("PH", _("Philippines")),
    ("SG", _("Singapore")),
    ("LK", _("Sri Lanka")),
    ("TH", _("Thailand")),
    ("GB", _("United Kingdom")),
    ("US", _("United States")),
    ("VN", _("Viet Nam")),
    ("ZZ", _("Other")),
]
