"""carebell's default wording in Spanish, one entry per kind.

SMS avoid á, í, ó and ú: those letters are not in the GSM-7 alphabet, and one of
them turns the whole message into UCS-2 with 70 characters per segment. Words are
chosen that need no such accent (ñ, é, ¿ and ¡ are in the alphabet); emails and calls
use normal spelling.
"""

from carebell.core.vocab import Kind

STOP = "STOP para salir"

_SIGN = "\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#"
_UNSUB = "\n\nPara no recibir más correos: #UNSUBSCRIBELINK#"

TEXTS: dict[Kind, dict[str, str]] = {
    # The appointment kinds that combine siblings name every child with their own time
    # through #APPTLIST# ("Ana 9:00 am, Ben 10:30 am"); one child reads the same way.
    Kind.APPT_CONFIRMATION: {
        "subject": "Confirme la cita de #PATIENTFIRSTNAME# del #APPTDATE#",
        "sms": "#SITENAME#: cita el #APPTDATE#: #APPTLIST#. C para confirmar, X para "
        "cancelar. Tel #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nEl #APPTDATE# hay cita con #PROVIDER# para #APPTLIST#, en "
        "#LOCATION#.\n\nConfirme o cancele aquí: #CONFIRMLINK#\n\n"
        "Si tiene preguntas, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. El #APPTDATE# hay cita para #APPTLIST#. "
        "Para confirmar, marque 1. Para cancelar, marque 2. Si tiene preguntas, llámenos "
        "al #SITEPHONE#.",
    },
    Kind.APPT_REMINDER: {
        "subject": "Recordatorio: cita de #PATIENTFIRSTNAME# el #APPTDATE#",
        "sms": "#SITENAME#: recuerde la cita del #APPTDATE#: #APPTLIST#. C para confirmar. "
        "Tel #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nLe recordamos la cita con #PROVIDER# del #APPTDATE# para "
        "#APPTLIST#, en #LOCATION#.\n\nConfirme o cancele aquí: #CONFIRMLINK#\n\n"
        "Si necesita cambiar la hora, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME# para recordarle la cita del #APPTDATE# para "
        "#APPTLIST#. Para confirmar, marque 1. Para cancelar, marque 2. Si tiene preguntas, "
        "llámenos al #SITEPHONE#.",
    },
    Kind.APPT_CANCEL_ACK: {
        "subject": "Recibimos su cancelación",
        "sms": "#SITENAME#: recibimos el pedido de cancelar el #APPTDATE#: #APPTLIST#. "
        "Otra cita: #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nRecibimos la cancelación de la cita del #APPTDATE# para "
        "#APPTLIST#. No enviaremos más recordatorios de esa cita.\n\n"
        "Para una nueva cita, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Recibimos la cancelación de la cita del "
        "#APPTDATE# para #APPTLIST#. Para una nueva cita, llámenos al #SITEPHONE#.",
    },
    Kind.APPT_CANCEL_REFUSED: {
        "subject": "Llámenos sobre la cita de #PATIENTFIRSTNAME#",
        "sms": "#SITENAME#: es tarde para cancelar por mensaje (#APPTDATE#: #APPTLIST#). "
        "Llame al #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nLas citas se pueden cancelar en línea hasta #CANCELHOURS# horas "
        "antes, así que no pudimos cancelar la cita del #APPTDATE# para #APPTLIST#.\n\n"
        "Por favor, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Ya es tarde para cancelar automáticamente "
        "la cita del #APPTDATE# para #APPTLIST#. Por favor, llámenos al #SITEPHONE#.",
    },
    Kind.APPT_RESCHEDULED: {
        "subject": "Nueva hora para la cita de #PATIENTFIRSTNAME#: #APPTDATE#",
        "sms": "#SITENAME#: la cita de #PATIENTFIRSTNAME# ahora es el #APPTDATE#, #APPTTIME#. "
        "Responda C para confirmar. Tel #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nLa cita de #PATIENTNAME# pasó del #PREVAPPTDATE# a las "
        "#PREVAPPTTIME# al #APPTDATE# a las #APPTTIME#, con #PROVIDER# en #LOCATION#.\n\n"
        "Confirme o cancele aquí: #CONFIRMLINK#\n\n¿Preguntas? Llámenos al #SITEPHONE#."
        + _SIGN
        + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. La cita de #PATIENTFIRSTNAME# ahora es el "
        "#APPTDATE# a #APPTTIME#. Para confirmar, marque 1. Para cancelar, marque 2. Si "
        "tiene preguntas, llámenos al #SITEPHONE#.",
    },
    Kind.APPT_NO_SHOW: {
        "subject": "Extrañamos a #PATIENTFIRSTNAME# el #APPTDATE#",
        "sms": "#SITENAME#: extrañamos a #PATIENTFIRSTNAME# en su cita del #APPTDATE#. Llame "
        "al #SITEPHONE# para otra cita. " + STOP,
        "email": "Hola:\n\nExtrañamos a #PATIENTNAME# en su cita del #APPTDATE# a las "
        "#APPTTIME#. Esperamos que todo esté bien.\n\nPara una nueva cita, llámenos al "
        "#SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Extrañamos a #PATIENTFIRSTNAME# en su cita "
        "del #APPTDATE#. Para una nueva cita, llámenos al #SITEPHONE#.",
    },
    Kind.RECALL: {
        "subject": "Ya le toca una visita a #PATIENTFIRSTNAME#",
        "sms": "#SITENAME#: ya le toca una visita a #PATIENTFIRSTNAME#. Llame al #SITEPHONE# "
        "para hacer una cita. " + STOP,
        "email": "Hola:\n\nSegún nuestros registros, a #PATIENTNAME# le toca una visita antes "
        "del #DUEDATE#.\n\nPara hacer una cita, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Ya le toca una visita a "
        "#PATIENTFIRSTNAME#. Para hacer una cita, llámenos al #SITEPHONE#.",
    },
    Kind.RX_READY: {
        "subject": "Su pedido está listo para recoger",
        "sms": "#SITENAME#: hay un pedido listo para #PATIENTFIRSTNAME#. Puede pasar a "
        "recogerlo. Tel #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nHay un pedido listo para #PATIENTNAME# (recetas: #RXCOUNT#; "
        "número #RXNUMBER#).\n\n¿Preguntas? Llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Hay un pedido listo para "
        "#PATIENTFIRSTNAME#. Si tiene preguntas, llámenos al #SITEPHONE#.",
    },
    Kind.RX_PICKUP_REMINDER: {
        "subject": "Su pedido le espera",
        "sms": "#SITENAME#: el pedido de #PATIENTFIRSTNAME# sigue listo para recoger. Tel "
        "#SITEPHONE#. " + STOP,
        "email": "Hola:\n\nEl pedido de #PATIENTNAME# está listo desde el #READYDATE# "
        "(número #RXNUMBER#). Pase a recogerlo pronto o llámenos al #SITEPHONE# si ya no lo "
        "necesita." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. El pedido de #PATIENTFIRSTNAME# sigue "
        "listo para recoger. Si tiene preguntas, llámenos al #SITEPHONE#.",
    },
    Kind.RX_PICKUP_CONFIRMATION: {
        "subject": "Gracias por recoger su pedido",
        "sms": "#SITENAME#: gracias, el pedido de #PATIENTFIRSTNAME# fue recogido. Tel "
        "#SITEPHONE#. " + STOP,
        "email": "Hola:\n\nEl pedido de #PATIENTNAME# (número #RXNUMBER#) fue recogido. Si no "
        "fue usted, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. El pedido de #PATIENTFIRSTNAME# fue "
        "recogido. Si no fue usted, llámenos al #SITEPHONE#.",
    },
    Kind.REFILL_DUE: {
        "subject": "Pronto le toca un resurtido",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME# tiene un resurtido para el #DUEDATE#. Llame al "
        "#SITEPHONE# para pedirlo. " + STOP,
        "email": "Hola:\n\n#PATIENTNAME# tiene un resurtido para el #DUEDATE# (número "
        "#RXNUMBER#).\n\nPara pedirlo, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. #PATIENTFIRSTNAME# tiene un resurtido para "
        "el #DUEDATE#. Para pedirlo, llámenos al #SITEPHONE#.",
    },
    Kind.REFILL_PAST_DUE: {
        "subject": "Un resurtido está atrasado",
        "sms": "#SITENAME#: el resurtido de #PATIENTFIRSTNAME# era para el #DUEDATE#. Llame "
        "al #SITEPHONE# para pedirlo. " + STOP,
        "email": "Hola:\n\nEl resurtido de #PATIENTNAME# era para el #DUEDATE# (número "
        "#RXNUMBER#).\n\nPara pedirlo, llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. El resurtido de #PATIENTFIRSTNAME# era para "
        "el #DUEDATE#. Para pedirlo, llámenos al #SITEPHONE#.",
    },
    Kind.REFILL_ASK_PRESCRIBER: {
        "subject": "Un resurtido necesita una nueva receta",
        "sms": "#SITENAME#: el resurtido de #PATIENTFIRSTNAME# (#DUEDATE#) necesita una "
        "nueva receta. Llame al #SITEPHONE# y le ayudamos. " + STOP,
        "email": "Hola:\n\nEl resurtido de #PATIENTNAME# para el #DUEDATE# (número "
        "#RXNUMBER#) ya no tiene resurtidos. Podemos pedir una nueva receta a #PRESCRIBER#."
        "\n\nLlámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. El resurtido de #PATIENTFIRSTNAME# para el "
        "#DUEDATE# necesita una nueva receta. Llámenos al #SITEPHONE# y le ayudamos.",
    },
    Kind.REVIEW_REQUEST: {
        "subject": "¿Qué tal le atendimos?",
        "sms": "#SITENAME#: gracias por su visita. Cuéntenos qué tal le atendimos: "
        "#REVIEWLINK# Tel #SITEPHONE#. " + STOP,
        "email": "Hola:\n\nGracias por elegirnos. ¿Nos cuenta qué tal le atendimos? Solo toma "
        "un minuto: #REVIEWLINK#\n\n¿Preguntas? Llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Gracias por su visita. Nos gustaría saber "
        "qué tal le atendimos; encontrará un enlace en nuestro correo. Si tiene preguntas, "
        "llámenos al #SITEPHONE#.",
    },
    Kind.BIRTHDAY: {
        "subject": "¡Feliz cumpleaños, #PATIENTFIRSTNAME#!",
        "sms": "¡Feliz cumpleaños, #PATIENTFIRSTNAME#! Le desea todo el equipo de #SITENAME#, "
        "#SITEPHONE#. " + STOP,
        "email": "¡Feliz cumpleaños, #PATIENTFIRSTNAME#!\n\nTodo el equipo de #SITENAME# le "
        "desea un día maravilloso." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME# para desearle a #PATIENTFIRSTNAME# un feliz "
        "cumpleaños. Puede llamarnos al #SITEPHONE#.",
    },
    Kind.WELCOME: {
        "subject": "Le damos la bienvenida a #SITENAME#",
        "sms": "#SITENAME# le da la bienvenida, #PATIENTFIRSTNAME#. Le escribiremos sobre "
        "citas y pedidos. Ayuda: #SITEPHONE#. Pueden aplicar cargos. " + STOP,
        "email": "¡Bienvenida o bienvenido, #PATIENTFIRSTNAME#!\n\nLe enviaremos "
        "recordatorios y avisos de #SITENAME#. Puede cambiar cómo le contactamos cuando "
        "quiera llamando al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Le damos la bienvenida, "
        "#PATIENTFIRSTNAME#. Le enviaremos recordatorios y avisos. Puede llamarnos al "
        "#SITEPHONE#.",
    },
    Kind.GENERAL: {
        "subject": "Un mensaje de #SITENAME#",
        "sms": "#SITENAME#: Hola #PATIENTFIRSTNAME#, tenemos novedades para usted. Llame al "
        "#SITEPHONE#. " + STOP,
        "email": "Hola #PATIENTFIRSTNAME#:\n\nTenemos novedades para usted. Por favor, "
        "llámenos al #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hola, le llamamos de #SITENAME#. Tenemos novedades para #PATIENTFIRSTNAME#. "
        "Por favor, llámenos al #SITEPHONE#.",
    },
    Kind.VERIFICATION: {
        "subject": "Su clave de #SITENAME#: #CODE#",
        "sms": "#SITENAME#: su clave es #CODE# y vence en #CODEMINUTES# minutos. Si no la ha "
        "pedido, llame al #SITEPHONE#.",
        "email": "Su clave de verificación es #CODE#.\n\nVence en #CODEMINUTES# minutos. Si "
        "no la ha pedido, llámenos al #SITEPHONE#.\n\n#SITENAME#\n#SITEPHONE#",
        "call": "Hola, le llamamos de #SITENAME#. Su clave es #CODE#. Repetimos, su clave es "
        "#CODE#. Vence en #CODEMINUTES# minutos. Si no la ha pedido, llámenos al #SITEPHONE#.",
    },
    Kind.INBOX_REPLY: {
        "subject": "Re: su mensaje a #SITENAME#",
        "sms": "#SITENAME#: Hola #PATIENTFIRSTNAME#, gracias por su mensaje. Si es urgente, "
        "llame al #SITEPHONE#.",
        "email": "Hola #PATIENTFIRSTNAME#:\n\nGracias por su mensaje. Si es urgente, llámenos "
        "al #SITEPHONE#." + _SIGN,
        "call": "Hola, le llamamos de #SITENAME# para responder a su mensaje. Por favor, "
        "llámenos al #SITEPHONE#.",
    },
    Kind.KEYWORD_REPLY: {
        "subject": "Sobre los mensajes de #SITENAME#",
        "sms": "#SITENAME#: mensajes sobre citas y pedidos, frecuencia variable. Pueden "
        "aplicar cargos por mensajes y datos. Ayuda: #SITEPHONE#. STOP para salir.",
        "email": "#SITENAME# envía mensajes sobre citas y pedidos; la frecuencia varía. Para "
        "ayuda, llame al #SITEPHONE#. Para dejar de recibir mensajes de texto, responda STOP "
        "a cualquiera de ellos.\n\n#SITENAME#\n#SITEPHONE#",
        "call": "Le habla #SITENAME#. Enviamos mensajes sobre citas y pedidos. Para ayuda, "
        "llame al #SITEPHONE#.",
    },
}

KEYWORD_REPLIES = {
    "help": TEXTS[Kind.KEYWORD_REPLY]["sms"],
    "stop": "#SITENAME#: ya no le enviaremos mensajes. Responda START para recibirlos de "
    "nuevo. Ayuda: #SITEPHONE#",
    "start": "#SITENAME#: mensajes activados de nuevo. Pueden aplicar cargos. Responda STOP "
    "para salir, HELP para ayuda.",
}

QUICK_REPLIES = {
    "pick_visit": "#SITENAME#: ¿qué cita? Responda con su número: {items}",
    "call_confirmed": "Gracias. Su cita queda confirmada. Adiós.",
    "call_key_unknown": "Lo sentimos, esa tecla no tiene función. Llámenos si necesita "
    "ayuda. Adiós.",
}

LINK_LABELS = {
    "CONFIRMLINK": "Confirmar o cancelar",
    "REVIEWLINK": "Dejar una opinión",
    "UNSUBSCRIBELINK": "Cancelar la suscripción",
}
