from django.urls import path

from carebell.web.staff.views import (
    account,
    audit,
    delivery,
    home,
    notifications,
    patients,
    queue,
    rules,
    tokens,
)
from carebell.web.staff.views import consent as consent_views
from carebell.web.staff.views import formats as format_views
from carebell.web.staff.views import group_send as group_views
from carebell.web.staff.views import imports as import_views
from carebell.web.staff.views import inbox as inbox_views
from carebell.web.staff.views import one_off as one_off_views
from carebell.web.staff.views import preferences as preference_views
from carebell.web.staff.views import quick_responses as quick_views
from carebell.web.staff.views import reports as report_views
from carebell.web.staff.views import webhooks as webhook_views

app_name = "staff"

urlpatterns = [
    path("", home.home, name="home"),
    path("sign-in/", account.sign_in, name="sign-in"),
    path("sign-in/code/", account.sign_in_code, name="sign-in-code"),
    path("sign-out/", account.sign_out, name="sign-out"),
    path("account/two-factor/", account.two_factor, name="two-factor"),
    path("account/password/", account.password_change, name="password"),
    path("site/", account.choose_site, name="choose-site"),
    path("settings/delivery/", delivery.delivery_settings, name="delivery-settings"),
    path("queue/", queue.queue, name="queue"),
    path("queue/export.csv", queue.export, name="queue-export"),
    path("queue/delete/", queue.cancel, name="queue-cancel"),
    path("queue/<int:message_id>/", queue.message_detail, name="queue-message"),
    path("patients/", patients.patient_list, name="patients"),
    path("patients/<int:patient_id>/", patients.patient_panel, name="patient"),
    path("patients/<int:patient_id>/consent/", consent_views.record, name="record-consent"),
    path(
        "patients/<int:patient_id>/points/<int:point_id>/code/",
        consent_views.send_code,
        name="send-code",
    ),
    path(
        "patients/<int:patient_id>/points/<int:point_id>/verify/",
        consent_views.verify,
        name="verify-point",
    ),
    path("consent/", consent_views.ledger, name="consent-ledger"),
    path("consent/export.csv", consent_views.export, name="consent-export"),
    path("consent/wording/", consent_views.publish_wording, name="consent-wording"),
    path("patients/group/", group_views.start_from_listing, name="group-start"),
    path("groups/<int:group_id>/", group_views.recipients, name="group-recipients"),
    path("groups/<int:group_id>/fix/", group_views.fix_recipient, name="group-fix"),
    path("groups/<int:group_id>/message/", group_views.compose, name="group-compose"),
    path("groups/<int:group_id>/review/", group_views.review, name="group-review"),
    path("groups/<int:group_id>/send/", group_views.send, name="group-send"),
    path("groups/<int:group_id>/progress/", group_views.progress, name="group-progress"),
    path("patients/<int:patient_id>/message/", one_off_views.one_off, name="one-off"),
    path("notifications/", notifications.notification_list, name="notifications"),
    path("notifications/read/", notifications.mark_read, name="notifications-read"),
    path("audit/", audit.audit_log, name="audit"),
    path("automated/", rules.rule_list, name="rules"),
    path("automated/new/", rules.rule_new, name="rule-new"),
    path("automated/<int:rule_id>/", rules.rule_edit, name="rule"),
    path("automated/<int:rule_id>/toggle/", rules.rule_toggle, name="rule-toggle"),
    path("formats/", format_views.format_list, name="formats"),
    path("formats/new/", format_views.format_edit, name="format-new"),
    path("formats/<int:format_id>/", format_views.format_edit, name="format"),
    path("formats/preview/", format_views.format_preview, name="format-preview"),
    path("preferences/", preference_views.contact_preferences, name="contact-preferences"),
    path(
        "patients/<int:patient_id>/apply-defaults/",
        preference_views.apply_defaults,
        name="apply-defaults",
    ),
    path("inbox/", inbox_views.inbox, name="inbox"),
    path("inbox/poll/", inbox_views.inbox_poll, name="inbox-poll"),
    path("inbox/reviews/", inbox_views.review_list, name="inbox-reviews"),
    path("inbox/reviews/<int:review_id>/", inbox_views.review_decide, name="inbox-review"),
    path("inbox/<int:conversation_id>/", inbox_views.conversation_page, name="inbox-conversation"),
    path(
        "inbox/<int:conversation_id>/poll/", inbox_views.conversation_poll, name="inbox-thread-poll"
    ),
    path("inbox/<int:conversation_id>/reply/", inbox_views.reply, name="inbox-reply"),
    path("inbox/<int:conversation_id>/assign/", inbox_views.assign, name="inbox-assign"),
    path("inbox/<int:conversation_id>/done/", inbox_views.mark_done, name="inbox-done"),
    path("quick-responses/", quick_views.quick_response_list, name="quick-responses"),
    path("quick-responses/new/", quick_views.quick_response_edit, name="quick-response-new"),
    path(
        "quick-responses/<int:quick_response_id>/",
        quick_views.quick_response_edit,
        name="quick-response",
    ),
    path(
        "quick-responses/<int:quick_response_id>/delete/",
        quick_views.quick_response_delete,
        name="quick-response-delete",
    ),
    path("webhooks/", webhook_views.webhook_list, name="webhooks"),
    path("webhooks/new/", webhook_views.webhook_new, name="webhook-new"),
    path("webhooks/<int:endpoint_id>/", webhook_views.webhook_detail, name="webhook"),
    path("webhooks/<int:endpoint_id>/rotate/", webhook_views.webhook_rotate, name="webhook-rotate"),
    path(
        "webhooks/<int:endpoint_id>/deliveries/<int:delivery_id>/resend/",
        webhook_views.webhook_resend,
        name="webhook-resend",
    ),
    path("import/", import_views.import_page, name="import"),
    path("import/<int:job_id>/", import_views.import_job, name="import-job"),
    path("import/<int:job_id>/progress/", import_views.import_progress, name="import-progress"),
    path("import/<int:job_id>/apply/", import_views.import_apply, name="import-apply"),
    path("import/template/<slug:kind>.csv", import_views.import_template, name="import-template"),
    path("reports/", report_views.reports, name="reports"),
    path("reports/<slug:name>.csv", report_views.report_csv, name="report-csv"),
    path("account/api-tokens/", tokens.token_list, name="api-tokens"),
    path("account/api-tokens/<int:token_id>/revoke/", tokens.token_revoke, name="api-token-revoke"),
    path("api/", tokens.api_reference, name="api-reference"),
    path("api/assets/<str:name>", tokens.api_reference_asset, name="api-reference-asset"),
]
