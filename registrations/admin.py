"""The Django admin, for superusers: stores, users and their roles; the audit log read-only.

People, registrations and everything else that holds identity data are not registered here:
the admin would show, edit and search them with none of the app's scoping and auditing. Every
change made here to a store, a user or a role is an audit event.
"""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.utils import NestedObjects
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import BadRequest
from django.db import router
from django.db.models import Q
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_tasks_db.models import DBTaskResult

from registrations import services
from registrations.audit import EVENT_COLUMNS, FIELD_NAME, Origin
from registrations.forms.accounts import AdminSignInForm
from registrations.models import AuditEvent, Store, User


def _changed_fields(form) -> list[str]:
    names = set()
    for name in getattr(form, "changed_data", ()):
        # The add form's password1/password2 are one field as far as the audit is concerned.
        name = "password" if name.startswith("password") else name
        if FIELD_NAME.match(name):
            names.add(name)
    return sorted(names)


def titled(filter_class, title):
    """A field's list filter under a title of our own ("By role"), for fields whose model label
    is not what the app calls them."""

    class TitledFilter(filter_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.title = title

    return TitledFilter


def _names(objects, attribute: str) -> str:
    # Sorted here rather than by order_by(), which would bypass the prefetched rows.
    return ", ".join(sorted(str(getattr(obj, attribute)) for obj in objects))


class NulRefusingAdmin(admin.ModelAdmin):
    """A NUL in a filter or the search of a list is refused (400): PostgreSQL cannot compare
    text with a NUL in it and would raise instead of finding nothing."""

    # The "view on site" shortcut is not served (simreg/urls.py): no link to it either.
    view_on_site = False

    def changelist_view(self, request, extra_context=None):
        texts = [text for key, values in request.GET.lists() for text in (key, *values)]
        if any("\x00" in text for text in texts):
            raise BadRequest("A NUL character in the query string.")
        return super().changelist_view(request, extra_context)


class AuditedAdmin(NulRefusingAdmin):
    """Records each add, change and delete as a USER_CHANGED audit event (field names only)."""

    audit_object = ""

    def audit_details(self, obj) -> dict:
        return {"object": self.audit_object, "id": obj.pk}

    def audit_store(self, obj) -> Store | None:
        return None

    def audit(self, request, obj, *, fields=(), **details) -> None:
        services.admin_change_record(
            actor=request.user,
            origin=Origin.of(request),
            store=self.audit_store(obj),
            fields=fields,
            details={**self.audit_details(obj), **details},
        )

    def save_related(self, request, form, formsets, change) -> None:
        # After the many-to-many fields (roles, stores) are saved: one event for the whole form.
        super().save_related(request, form, formsets, change)
        self.audit(request, form.instance, fields=_changed_fields(form), created=not change)

    def delete_model(self, request, obj) -> None:
        self.audit(request, obj, deleted=True)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.audit(request, obj, deleted=True)
        super().delete_queryset(request, queryset)

    def get_deleted_objects(self, objs, request):
        """What a deletion would take with it, with the objects that prevent it counted by kind
        instead of named one by one: they are registrations and their history, whose references
        the admin has no business listing (nor writing an audit event for)."""
        to_delete, model_count, perms_needed, protected = super().get_deleted_objects(objs, request)
        if protected:
            collector = NestedObjects(using=router.db_for_write(self.model))
            collector.collect(objs)
            kinds = Counter(capfirst(obj._meta.verbose_name_plural) for obj in collector.protected)
            protected = [f"{kind}: {count}" for kind, count in sorted(kinds.items())]
        return to_delete, model_count, perms_needed, protected


@admin.register(Store)
class StoreAdmin(AuditedAdmin):
    audit_object = "store"
    list_display = ("code", "name", "name_zh", "is_active")
    list_filter = ("is_active",)
    search_fields = ("code", "name")

    def audit_store(self, obj) -> Store | None:
        return obj


@admin.register(User)
class SimregUserAdmin(AuditedAdmin, UserAdmin):
    audit_object = "user"
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("first_name", "last_name", "email")}),
        (_("Roles and stores"), {"fields": ("groups", "stores", "supervised_stores")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    filter_horizontal = ("groups", "user_permissions", "stores", "supervised_stores")
    actions = ["reset_second_factor"]
    list_display = (
        "username",
        "role_names",
        "store_codes",
        "supervised_store_codes",
        "is_active",
        "is_superuser",
    )
    list_filter = (
        "is_active",
        "is_superuser",
        ("groups", titled(admin.RelatedFieldListFilter, _("role"))),
        "stores",
        "supervised_stores",
    )

    def get_queryset(self, request):
        # One query per relation for the whole page, not one per user.
        return (
            super().get_queryset(request).prefetch_related("groups", "stores", "supervised_stores")
        )

    @admin.display(description=_("Roles"))
    def role_names(self, obj) -> str | None:
        return _names(obj.groups.all(), "name") or None

    @admin.display(description=_("Works at"))
    def store_codes(self, obj) -> str | None:
        return _names(obj.stores.all(), "code") or None

    @admin.display(description=_("Supervises"))
    def supervised_store_codes(self, obj) -> str | None:
        return _names(obj.supervised_stores.all(), "code") or None

    def audit_details(self, obj) -> dict:
        return {**super().audit_details(obj), "username": obj.get_username()}

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["label"] = _("Roles")
            kwargs["help_text"] = _("What the user does: counter staff, supervisor, compliance.")
            # The two lists' headings ("Available roles", "Chosen roles") come from the widget.
            kwargs["widget"] = FilteredSelectMultiple(_("roles"), is_stacked=False)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    @admin.action(description=_("Reset the second factor of the selected users"))
    def reset_second_factor(self, request, queryset) -> None:
        """They set up their authenticator app again at their next sign-in."""
        origin = Origin.of(request)
        users = list(queryset)
        for user in users:
            services.second_factor_reset(user=user, actor=request.user, origin=origin)
        self.message_user(
            request,
            ngettext(
                "The second factor of %(count)d user was reset.",
                "The second factors of %(count)d users were reset.",
                len(users),
            )
            % {"count": len(users)},
            messages.SUCCESS,
        )

    def user_change_password(self, request, id, form_url=""):
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            self.audit(request, self.get_object(request, id), fields=["password"])
        return response


admin.site.unregister(Group)
# Second-factor devices change only through the audited services (the action above, the
# supervisor's staff page); django-otp's own admin pages would also show the keys.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
# Job results hold ids and counts only, but they are the worker's bookkeeping: compliance
# admins follow their jobs on the audit page, operators in the worker's log.
if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)


@admin.register(Group)
class RoleAdmin(AuditedAdmin, GroupAdmin):
    audit_object = "role"

    def audit_details(self, obj) -> dict:
        return {**super().audit_details(obj), "name": obj.name}


class StoreCodeFilter(admin.SimpleListFilter):
    """The stores, from the stores table: no scan of the log for the codes it holds."""

    title = _("store")
    parameter_name = "store_code"

    def lookups(self, request, model_admin):
        stores = Store.objects.values_list("code", "name")
        return [(code, f"{code} {name}") for code, name in stores]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(store_code=self.value())
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(NulRefusingAdmin):
    """Read-only: the log is append-only, and the admin is no way around that."""

    list_display = ("number", "time", "user", "action_label", "store", "record")
    list_filter = (
        ("action", titled(admin.ChoicesFieldListFilter, _("action"))),
        StoreCodeFilter,
    )
    # Exact matches only, each on an indexed column (see get_search_results).
    search_fields = ("id", "actor_username", "registration_reference")
    search_help_text = _("An event number, a username or a record reference (exact).")
    ordering = ("-id",)
    list_per_page = 50
    show_full_result_count = False
    # Every column, the actor as the user rather than their number.
    fields = tuple("actor" if name == "actor_id" else name for name in EVENT_COLUMNS)
    readonly_fields = fields

    @admin.display(description=_("No."), ordering="id")
    def number(self, obj) -> int:
        return obj.id

    @admin.display(description=_("Time"), ordering="at")
    def time(self, obj):
        return obj.at

    @admin.display(description=_("User"), ordering="actor_username")
    def user(self, obj) -> str | None:
        return obj.actor_username or None

    @admin.display(description=_("Action"), ordering="action")
    def action_label(self, obj) -> str:
        return obj.get_action_display()

    @admin.display(description=_("Store"), ordering="store_code")
    def store(self, obj) -> str | None:
        return obj.store_code or None

    @admin.display(description=_("Record"), ordering="registration_reference")
    def record(self, obj) -> str | None:
        return obj.registration_reference or None

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    # Events name records and who looked at them: reading the log here is itself recorded, as
    # on the compliance pages. One event per page shown; a refused or redirected request shows
    # nothing and records nothing.

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if response.status_code == 200 and changelist is not None:
            services.audit_event_view_list(
                actor=request.user,
                origin=Origin.of(request),
                view="admin_audit_events",
                events=changelist.result_list,
                parameters=request.GET.keys(),
            )
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        event = (getattr(response, "context_data", None) or {}).get("original")
        if response.status_code == 200 and event is not None:
            services.audit_event_view_record(
                actor=request.user,
                origin=Origin.of(request),
                view="admin_audit_event",
                event=event,
            )
        return response

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q(actor_username=term) | Q(registration_reference=term.upper())
        if term.isdigit():
            match |= Q(id=int(term))
        return queryset.filter(match), False


admin.site.site_header = _("simreg administration")
admin.site.site_title = _("simreg administration")

# The admin's sign-in page protects the superusers: the same lock as the app's sign-in.
admin.site.login_form = AdminSignInForm
