from django.urls import path

from carebell.web.staff.views import account, delivery, home, rules
from carebell.web.staff.views import formats as format_views

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
    path("automated/", rules.rule_list, name="rules"),
    path("automated/<int:rule_id>/", rules.rule_edit, name="rule"),
    path("automated/<int:rule_id>/toggle/", rules.rule_toggle, name="rule-toggle"),
    path("formats/", format_views.format_list, name="formats"),
    path("formats/new/", format_views.format_edit, name="format-new"),
    path("formats/<int:format_id>/", format_views.format_edit, name="format"),
    path("formats/preview/", format_views.format_preview, name="format-preview"),
]
