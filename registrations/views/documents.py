"""Document copies: opened with a reason, by counter staff of the store or by supervisors."""

from __future__ import annotations

import io

from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views import View

from registrations import documents, roles, selectors, services
from registrations.audit import Origin
from registrations.forms.documents import DocumentViewForm
from registrations.models import (
    DocumentCopy,
    Registration,
)
from registrations.storage import StorageUnavailable
from registrations.views.common import RoleRequiredMixin


class DocumentView(RoleRequiredMixin, View):
    """A copy opens only with a reason; each opening is an audit event."""

    template_name = "registrations/documents/reason.html"

    def has_role(self, user) -> bool:
        return roles.allows(user, roles.RECORD) or roles.allows(user, roles.REVEAL)

    def document(self, request: HttpRequest, reference: str, pk: int) -> DocumentCopy:
        registration = get_object_or_404(
            selectors.registration_list_for(user=request.user)
            .select_related("store")
            .defer("comment"),
            reference=reference,
        )
        document = get_object_or_404(registration.documents.filter(purged_at__isnull=True), pk=pk)
        document.registration = registration
        if not selectors.document_copy_can_view(user=request.user, document=document):
            raise PermissionDenied
        return document

    def get(self, request: HttpRequest, reference: str, pk: int) -> HttpResponse:
        document = self.document(request, reference, pk)
        # The page that asks for a reason names the record and the copy: a read too.
        services.registration_view_record(
            actor=request.user,
            registration=document.registration,
            origin=Origin.of(request),
            page="document",
            details={"document": document.pk, "kind": document.kind},
        )
        return self.render(document, DocumentViewForm())

    def post(self, request: HttpRequest, reference: str, pk: int) -> HttpResponse:
        document = self.document(request, reference, pk)
        form = DocumentViewForm(request.POST)
        if not form.is_valid():
            return self.render(document, form)
        try:
            data = services.document_copy_read(
                document=document,
                actor=request.user,
                origin=Origin.of(request),
                reason=form.cleaned_data["reason"],
            )
        except documents.CopyUnavailable:
            return self.render(document, form, unavailable=True, status=410)
        except StorageUnavailable:
            # The copy is likely there: try again later, not "ask for a new upload".
            return self.render(document, form, storage_down=True, status=503)
        extension = documents.EXTENSIONS.get(document.content_type, "bin")
        response = FileResponse(
            io.BytesIO(data),
            content_type=document.content_type,
            as_attachment=False,
            filename=f"{document.registration.reference}-{document.kind}.{extension}",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        # The browser's own image and PDF viewers style the page inline; nothing else may run.
        response["Content-Security-Policy"] = (
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'; "
            "frame-ancestors 'none'"
        )
        return response

    def render(
        self,
        document: DocumentCopy,
        form: DocumentViewForm,
        *,
        unavailable: bool = False,
        storage_down: bool = False,
        status: int = 200,
    ) -> HttpResponse:
        registration = document.registration
        return render(
            self.request,
            self.template_name,
            {
                "document": document,
                "registration": registration,
                "form": form,
                "unavailable": unavailable,
                "storage_down": storage_down,
                "back_url": self.back_url(registration),
            },
            status=status,
        )

    def back_url(self, registration: Registration) -> str:
        """The counter's record page for its staff, the review page for supervisors."""
        user = self.request.user
        if (
            roles.allows(user, roles.RECORD)
            and user.stores.filter(pk=registration.store_id).exists()
        ):
            return reverse("counter-record", args=[registration.reference])
        return reverse("review-detail", args=[registration.reference])
