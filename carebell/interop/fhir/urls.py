from django.urls import path, re_path

from carebell.interop.fhir import views

app_name = "fhir"

urlpatterns = [
    path("", views.base, name="base"),
    path("metadata", views.metadata, name="metadata"),
    re_path(r"^(?P<resource_type>[A-Z][A-Za-z]{1,40})$", views.type_level, name="type"),
    re_path(
        r"^(?P<resource_type>[A-Z][A-Za-z]{1,40})/(?P<fhir_id>[A-Za-z0-9\-.]{1,64})$",
        views.instance,
        name="instance",
    ),
    re_path(r"^(?P<rest>.*)$", views.unknown, name="unknown"),
]
