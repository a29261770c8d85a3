# ruff: noqa: E501 - the wording as it was, one line per text
"""Sites' untouched copies of the appointment defaults that combine siblings now name
every child with their own time (#APPTLIST#): a copy whose body is still the former
default wording is brought up to today's default; a copy staff edited is left alone."""

from django.db import migrations

#: The former default bodies, by (kind, channel, language).
FORMER = {
    ('appt_confirmation', 'sms', 'en'): '#SITENAME#: #PATIENTFIRSTNAME# is booked #APPTDATE# at #APPTTIME#. Reply C to confirm or X to cancel. Questions: #SITEPHONE#. STOP to opt out',
    ('appt_confirmation', 'email', 'en'): 'Hello,\n\n#PATIENTNAME# is booked with #PROVIDER# on #APPTDATE# at #APPTTIME#, at #LOCATION#.\n\nPlease confirm or cancel here: #CONFIRMLINK#\n\nIf you have questions, call us at #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nTo stop these emails: #UNSUBSCRIBELINK#',
    ('appt_confirmation', 'call', 'en'): 'Hello, this is #SITENAME#. #PATIENTFIRSTNAME# has an appointment on #APPTDATE# at #APPTTIME#. To confirm, press 1. To cancel, press 2. For questions, call us at #SITEPHONE#.',
    ('appt_reminder', 'sms', 'en'): '#SITENAME#: reminder, #PATIENTFIRSTNAME# has a visit #APPTDATE# at #APPTTIME#. Reply C to confirm. Questions: #SITEPHONE#. STOP to opt out',
    ('appt_reminder', 'email', 'en'): 'Hello,\n\nA reminder that #PATIENTNAME# sees #PROVIDER# on #APPTDATE# at #APPTTIME#, at #LOCATION#.\n\nConfirm or cancel here: #CONFIRMLINK#\n\nIf you need to change the time, call us at #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nTo stop these emails: #UNSUBSCRIBELINK#',
    ('appt_reminder', 'call', 'en'): 'Hello, this is #SITENAME# with a reminder. #PATIENTFIRSTNAME# has an appointment on #APPTDATE# at #APPTTIME#. To confirm, press 1. To cancel, press 2. For questions, call us at #SITEPHONE#.',
    ('appt_cancel_ack', 'sms', 'en'): '#SITENAME#: we received the cancellation for #PATIENTFIRSTNAME# on #APPTDATE# at #APPTTIME#. To rebook, call #SITEPHONE#. STOP to opt out',
    ('appt_cancel_ack', 'email', 'en'): "Hello,\n\nWe received the cancellation for #PATIENTNAME#'s appointment on #APPTDATE# at #APPTTIME#. No further reminders will be sent for it.\n\nTo book a new time, call us at #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nTo stop these emails: #UNSUBSCRIBELINK#",
    ('appt_cancel_ack', 'call', 'en'): "Hello, this is #SITENAME#. We received the cancellation for #PATIENTFIRSTNAME#'s appointment on #APPTDATE#. To book a new time, call us at #SITEPHONE#.",
    ('appt_cancel_refused', 'sms', 'en'): "#SITENAME#: it is too late to cancel #PATIENTFIRSTNAME#'s #APPTTIME# visit by text. Please call #SITEPHONE#. STOP to opt out",
    ('appt_cancel_refused', 'email', 'en'): "Hello,\n\nAppointments can be cancelled online up to #CANCELHOURS# hours before they start, so we could not cancel #PATIENTNAME#'s appointment on #APPTDATE# at #APPTTIME#.\n\nPlease call us at #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nTo stop these emails: #UNSUBSCRIBELINK#",
    ('appt_cancel_refused', 'call', 'en'): "Hello, this is #SITENAME#. It is too late to cancel #PATIENTFIRSTNAME#'s appointment on #APPTDATE# automatically. Please call us at #SITEPHONE#.",
    ('appt_confirmation', 'sms', 'es'): '#SITENAME#: cita de #PATIENTFIRSTNAME# el #APPTDATE#, #APPTTIME#. Responda C para confirmar o X para cancelar. Tel #SITEPHONE#. STOP para salir',
    ('appt_confirmation', 'email', 'es'): 'Hola:\n\n#PATIENTNAME# tiene una cita con #PROVIDER# el #APPTDATE# a las #APPTTIME#, en #LOCATION#.\n\nConfirme o cancele aquí: #CONFIRMLINK#\n\nSi tiene preguntas, llámenos al #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nPara no recibir más correos: #UNSUBSCRIBELINK#',
    ('appt_confirmation', 'call', 'es'): 'Hola, le llamamos de #SITENAME#. #PATIENTFIRSTNAME# tiene una cita el #APPTDATE# a #APPTTIME#. Para confirmar, marque 1. Para cancelar, marque 2. Si tiene preguntas, llámenos al #SITEPHONE#.',
    ('appt_reminder', 'sms', 'es'): '#SITENAME#: recuerde la cita de #PATIENTFIRSTNAME# el #APPTDATE#, #APPTTIME#. Responda C para confirmar. Tel #SITEPHONE#. STOP para salir',
    ('appt_reminder', 'email', 'es'): 'Hola:\n\nLe recordamos que #PATIENTNAME# tiene cita con #PROVIDER# el #APPTDATE# a las #APPTTIME#, en #LOCATION#.\n\nConfirme o cancele aquí: #CONFIRMLINK#\n\nSi necesita cambiar la hora, llámenos al #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nPara no recibir más correos: #UNSUBSCRIBELINK#',
    ('appt_reminder', 'call', 'es'): 'Hola, le llamamos de #SITENAME# para recordarle que #PATIENTFIRSTNAME# tiene una cita el #APPTDATE# a #APPTTIME#. Para confirmar, marque 1. Para cancelar, marque 2. Si tiene preguntas, llámenos al #SITEPHONE#.',
    ('appt_cancel_ack', 'sms', 'es'): '#SITENAME#: recibimos el pedido de cancelar la cita de #PATIENTFIRSTNAME# del #APPTDATE#. Para otra cita: #SITEPHONE#. STOP para salir',
    ('appt_cancel_ack', 'email', 'es'): 'Hola:\n\nRecibimos la cancelación de la cita de #PATIENTNAME# del #APPTDATE# a las #APPTTIME#. No enviaremos más recordatorios de esa cita.\n\nPara una nueva cita, llámenos al #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nPara no recibir más correos: #UNSUBSCRIBELINK#',
    ('appt_cancel_ack', 'call', 'es'): 'Hola, le llamamos de #SITENAME#. Recibimos la cancelación de la cita de #PATIENTFIRSTNAME# del #APPTDATE#. Para una nueva cita, llámenos al #SITEPHONE#.',
    ('appt_cancel_refused', 'sms', 'es'): '#SITENAME#: ya es tarde para cancelar por mensaje la cita de #PATIENTFIRSTNAME# (#APPTTIME#). Llame al #SITEPHONE#. STOP para salir',
    ('appt_cancel_refused', 'email', 'es'): 'Hola:\n\nLas citas se pueden cancelar en línea hasta #CANCELHOURS# horas antes, así que no pudimos cancelar la cita de #PATIENTNAME# del #APPTDATE# a las #APPTTIME#.\n\nPor favor, llámenos al #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#\n\nPara no recibir más correos: #UNSUBSCRIBELINK#',
    ('appt_cancel_refused', 'call', 'es'): 'Hola, le llamamos de #SITENAME#. Ya es tarde para cancelar automáticamente la cita de #PATIENTFIRSTNAME# del #APPTDATE#. Por favor, llámenos al #SITEPHONE#.',
}


def refresh_untouched_copies(apps, schema_editor):
    from carebell.formats.defaults import default_template

    MessageTemplate = apps.get_model("messaging", "MessageTemplate")
    for (kind, channel, language), body in FORMER.items():
        current = default_template(kind, channel, language)
        MessageTemplate.objects.filter(
            kind=kind, channel=channel, language=language, body=body, is_default=True
        ).update(subject=current.subject, body=current.body, html_body=current.html_body)


class Migration(migrations.Migration):
    dependencies = [("messaging", "0006_attempt_lean_indexes")]

    operations = [migrations.RunPython(refresh_untouched_copies, migrations.RunPython.noop)]
