"""What the FHIR door keeps, in the admin: a version per resource and the
identifiers clients gave it. Both are written only by the FHIR handlers (versions
and ETags must stay what clients were told), so they are read-only here. A held
resource and an identifier are patient data: looking at one is audited."""

from django.contrib import admin

from carebell.interop.fhir.models import FhirIdentifier, FhirRecord
from carebell.sites.admin_scoping import SITE_FILTER, AppendOnlyAdmin

_INTEGRATIONS = "sites.manage_integrations"


class FhirAdmin(AppendOnlyAdmin):
    staff_view_permission = _INTEGRATIONS

    def audits_access(self) -> bool:
        return True


@admin.register(FhirRecord)
class FhirRecordAdmin(FhirAdmin):
    list_display = ("resource_type", "fhir_id", "object_id", "version", "last_updated",
                    "held_status", "site")  # fmt: skip
    list_filter = ("resource_type", SITE_FILTER)
    search_fields = ("fhir_id",)
    list_select_related = ("site",)


@admin.register(FhirIdentifier)
class FhirIdentifierAdmin(FhirAdmin):
    # The value is left out of the list: an identifier may be a medical record number.
    list_display = ("record", "resource_type", "system", "site")
    list_filter = ("resource_type", SITE_FILTER)
    search_fields = ("value",)
    list_select_related = ("record", "site")
