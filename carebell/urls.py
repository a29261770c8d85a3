from django.contrib import admin
from django.urls import include, path

from carebell.api.main import api
from carebell.web import metrics, views
from carebell.web.patient import verify as patient_verify
from carebell.web.patient import views as patient
from carebell.webhooks import views as hooks
from carebell.webhooks import voice

admin.site.site_header = "carebell"
admin.site.site_title = "carebell"
admin.site.index_title = "Patient messaging"

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("staff/", include("carebell.web.staff.urls")),
    path("fhir/R4/", include("carebell.interop.fhir.urls")),
    path("api/v1/", api.urls),
    path("hooks/<str:provider>/status/<int:attempt_id>", hooks.status_callback, name="status-hook"),
    path("hooks/twilio/voice/<int:attempt_id>", voice.call_answered, name="voice-answered"),
    path("hooks/twilio/gather/<int:attempt_id>", voice.key_pressed, name="voice-key"),
    path("hooks/<str:provider>/inbound", hooks.inbound_sms, name="inbound-hook"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("p/confirm/<str:token>", patient.confirm, name="patient-confirm"),
    path("p/review/<str:token>", patient.review, name="patient-review"),
    path("p/unsub/<str:token>", patient.unsubscribe, name="patient-unsubscribe"),
    path("p/verify/<str:token>", patient_verify.verify, name="patient-verify"),
    *hooks.anymail_hook_patterns(),
]
