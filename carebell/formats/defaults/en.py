"""carebell's default wording in English, one entry per kind.

Each entry: email subject, SMS, email text (the HTML part is laid out from it) and
call script. SMS and calls never name a drug or a diagnosis; every text names the
site and its phone; automated SMS end with the opt-out hint.
"""

from carebell.core.vocab import Kind

STOP = "STOP to opt out"

_SIGN = "\n\n#SITENAME#\n#SITEPHONE#\n#SITEADDRESS#"
_UNSUB = "\n\nTo stop these emails: #UNSUBSCRIBELINK#"

TEXTS: dict[Kind, dict[str, str]] = {
    # The appointment kinds that combine siblings name every child with their own time
    # through #APPTLIST# ("Ana 9:00 AM, Ben 10:30 AM"); one child reads the same way.
    Kind.APPT_CONFIRMATION: {
        "subject": "Please confirm #PATIENTFIRSTNAME#'s appointment on #APPTDATE#",
        "sms": "#SITENAME#: booked #APPTDATE#: #APPTLIST#. Reply C to confirm or X to cancel. "
        "Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nWe have booked #APPTLIST# with #PROVIDER# on #APPTDATE#, at "
        "#LOCATION#.\n\nPlease confirm or cancel here: #CONFIRMLINK#\n\n"
        "If you have questions, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. On #APPTDATE#, we have booked #APPTLIST#. To "
        "confirm, press 1. To cancel, press 2. For questions, call us at #SITEPHONE#.",
    },
    Kind.APPT_REMINDER: {
        "subject": "Reminder: #PATIENTFIRSTNAME#'s appointment on #APPTDATE#",
        "sms": "#SITENAME#: reminder for #APPTDATE#: #APPTLIST#. Reply C to confirm. "
        "Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nA reminder: on #APPTDATE#, #PROVIDER# sees #APPTLIST#, at "
        "#LOCATION#.\n\nConfirm or cancel here: #CONFIRMLINK#\n\n"
        "If you need to change the time, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME# with a reminder. On #APPTDATE#, we will see "
        "#APPTLIST#. To confirm, press 1. To cancel, press 2. For questions, call us at "
        "#SITEPHONE#.",
    },
    Kind.APPT_CANCEL_ACK: {
        "subject": "We received your cancellation",
        "sms": "#SITENAME#: we received the cancellation for #APPTDATE#: #APPTLIST#. To "
        "rebook, call #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nWe received the cancellation of the appointment on #APPTDATE# "
        "for #APPTLIST#. No further reminders will be sent for it.\n\n"
        "To book a new time, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. We received the cancellation of the appointment "
        "on #APPTDATE# for #APPTLIST#. To book a new time, call us at #SITEPHONE#.",
    },
    Kind.APPT_CANCEL_REFUSED: {
        "subject": "Please call us about #PATIENTFIRSTNAME#'s appointment",
        "sms": "#SITENAME#: it is too late to cancel by text (#APPTDATE#: #APPTLIST#). Please "
        "call #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nAppointments can be cancelled online up to #CANCELHOURS# hours "
        "before they start, so we could not cancel the appointment on #APPTDATE# for "
        "#APPTLIST#.\n\nPlease call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. It is too late to cancel the appointment on "
        "#APPTDATE# for #APPTLIST# automatically. Please call us at #SITEPHONE#.",
    },
    Kind.APPT_RESCHEDULED: {
        "subject": "New time for #PATIENTFIRSTNAME#'s appointment: #APPTDATE#",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME#'s visit is now #APPTDATE# at #APPTTIME#. "
        "Reply C to confirm. Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\n#PATIENTNAME#'s appointment has moved from #PREVAPPTDATE# at "
        "#PREVAPPTTIME# to #APPTDATE# at #APPTTIME#, with #PROVIDER# at #LOCATION#.\n\n"
        "Confirm or cancel here: #CONFIRMLINK#\n\nQuestions? Call us at #SITEPHONE#."
        + _SIGN
        + _UNSUB,
        "call": "Hello, this is #SITENAME#. #PATIENTFIRSTNAME#'s appointment is now on "
        "#APPTDATE# at #APPTTIME#. To confirm, press 1. To cancel, press 2. For questions, "
        "call us at #SITEPHONE#.",
    },
    Kind.APPT_NO_SHOW: {
        "subject": "We missed #PATIENTFIRSTNAME# on #APPTDATE#",
        "sms": "#SITENAME#: we missed #PATIENTFIRSTNAME# on #APPTDATE#. Please call "
        "#SITEPHONE# to book a new time. " + STOP,
        "email": "Hello,\n\nWe missed #PATIENTNAME# at the appointment on #APPTDATE# at "
        "#APPTTIME#. We hope all is well.\n\nTo book a new time, call us at #SITEPHONE#."
        + _SIGN
        + _UNSUB,
        "call": "Hello, this is #SITENAME#. We missed #PATIENTFIRSTNAME# at the appointment "
        "on #APPTDATE#. To book a new time, please call us at #SITEPHONE#.",
    },
    Kind.RECALL: {
        "subject": "#PATIENTFIRSTNAME# is due for a visit",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME# is due for a visit. Call #SITEPHONE# to book. "
        + STOP,
        "email": "Hello,\n\nOur records show #PATIENTNAME# is due for a visit by #DUEDATE#."
        "\n\nTo book, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. #PATIENTFIRSTNAME# is due for a visit. To book, "
        "please call us at #SITEPHONE#.",
    },
    Kind.RX_READY: {
        "subject": "Your order is ready for pickup",
        "sms": "#SITENAME#: an order for #PATIENTFIRSTNAME# is ready for pickup. Questions: "
        "#SITEPHONE#. " + STOP,
        "email": "Hello,\n\nAn order for #PATIENTNAME# is ready for pickup (prescriptions: "
        "#RXCOUNT#; number #RXNUMBER#).\n\nQuestions? Call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. An order for #PATIENTFIRSTNAME# is ready for "
        "pickup. For questions, call us at #SITEPHONE#.",
    },
    Kind.RX_PICKUP_REMINDER: {
        "subject": "Your order is waiting for pickup",
        "sms": "#SITENAME#: an order for #PATIENTFIRSTNAME# is still waiting for pickup. "
        "Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nAn order for #PATIENTNAME# has been ready since #READYDATE# "
        "(number #RXNUMBER#). Please pick it up soon, or call us at #SITEPHONE# if you no "
        "longer need it." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. An order for #PATIENTFIRSTNAME# is still waiting "
        "for pickup. For questions, call us at #SITEPHONE#.",
    },
    Kind.RX_PICKUP_CONFIRMATION: {
        "subject": "Thank you for picking up your order",
        "sms": "#SITENAME#: thank you, the order for #PATIENTFIRSTNAME# was picked up. "
        "Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nThe order for #PATIENTNAME# (number #RXNUMBER#) was picked up. "
        "If that was not you, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. The order for #PATIENTFIRSTNAME# was picked up. "
        "If that was not you, call us at #SITEPHONE#.",
    },
    Kind.REFILL_DUE: {
        "subject": "A refill is due soon",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME# has a refill due #DUEDATE#. Call #SITEPHONE# "
        "to order. " + STOP,
        "email": "Hello,\n\n#PATIENTNAME# has a refill due on #DUEDATE# (number #RXNUMBER#)."
        "\n\nTo order it, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. #PATIENTFIRSTNAME# has a refill due on "
        "#DUEDATE#. To order it, call us at #SITEPHONE#.",
    },
    Kind.REFILL_PAST_DUE: {
        "subject": "A refill is past due",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME# has a refill that was due #DUEDATE#. Call "
        "#SITEPHONE# to order. " + STOP,
        "email": "Hello,\n\n#PATIENTNAME# has a refill that was due on #DUEDATE# (number "
        "#RXNUMBER#).\n\nTo order it, call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. #PATIENTFIRSTNAME# has a refill that was due on "
        "#DUEDATE#. To order it, call us at #SITEPHONE#.",
    },
    Kind.REFILL_ASK_PRESCRIBER: {
        "subject": "A refill needs a new prescription",
        "sms": "#SITENAME#: #PATIENTFIRSTNAME#'s refill due #DUEDATE# needs a new "
        "prescription. Call #SITEPHONE# and we will help. " + STOP,
        "email": "Hello,\n\n#PATIENTNAME#'s refill due on #DUEDATE# (number #RXNUMBER#) "
        "has no refills left. We can ask #PRESCRIBER# for a new prescription.\n\n"
        "Call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. #PATIENTFIRSTNAME#'s refill due on #DUEDATE# "
        "needs a new prescription. Call us at #SITEPHONE# and we will help.",
    },
    Kind.REVIEW_REQUEST: {
        "subject": "How did we do?",
        "sms": "#SITENAME#: thank you for coming in. How did we do? #REVIEWLINK# "
        "Questions: #SITEPHONE#. " + STOP,
        "email": "Hello,\n\nThank you for choosing us. Would you tell others how we did? It "
        "takes a minute: #REVIEWLINK#\n\nQuestions? Call us at #SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. Thank you for coming in. We would love to hear "
        "how we did; you will find a link in our email. Questions? Call us at #SITEPHONE#.",
    },
    Kind.BIRTHDAY: {
        "subject": "Happy birthday, #PATIENTFIRSTNAME#!",
        "sms": "Happy birthday, #PATIENTFIRSTNAME#! Best wishes from all of us at #SITENAME#, "
        "#SITEPHONE#. " + STOP,
        "email": "Happy birthday, #PATIENTFIRSTNAME#!\n\nEveryone at #SITENAME# wishes you a "
        "wonderful day." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#, calling to wish #PATIENTFIRSTNAME# a happy "
        "birthday. You can reach us at #SITEPHONE#.",
    },
    Kind.WELCOME: {
        "subject": "Welcome to #SITENAME#",
        "sms": "Welcome to #SITENAME#, #PATIENTFIRSTNAME#! We will text about visits and "
        "orders. Help: #SITEPHONE#. Msg & data rates may apply. " + STOP,
        "email": "Welcome, #PATIENTFIRSTNAME#!\n\nWe will send you reminders and updates "
        "from #SITENAME#. You can change how we reach you at any time by calling "
        "#SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. Welcome, #PATIENTFIRSTNAME#. We will send you "
        "reminders and updates. You can reach us at #SITEPHONE#.",
    },
    Kind.GENERAL: {
        "subject": "A message from #SITENAME#",
        "sms": "#SITENAME#: Hello #PATIENTFIRSTNAME#, we have an update for you. Please call "
        "#SITEPHONE#. " + STOP,
        "email": "Hello #PATIENTFIRSTNAME#,\n\nWe have an update for you. Please call us at "
        "#SITEPHONE#." + _SIGN + _UNSUB,
        "call": "Hello, this is #SITENAME#. We have an update for #PATIENTFIRSTNAME#. Please "
        "call us at #SITEPHONE#.",
    },
    Kind.VERIFICATION: {
        "subject": "Your #SITENAME# code: #CODE#",
        "sms": "#SITENAME#: your code is #CODE#. It expires in #CODEMINUTES# minutes. Did "
        "not ask for it? Call #SITEPHONE#.",
        "email": "Your verification code is #CODE#.\n\nIt expires in #CODEMINUTES# minutes. "
        "If you did not ask for it, call us at #SITEPHONE#." + _SIGN.replace("\n#SITEADDRESS#", ""),
        "call": "Hello, this is #SITENAME#. Your code is #CODE#. Again, your code is #CODE#. "
        "It expires in #CODEMINUTES# minutes. If you did not ask for it, call us at #SITEPHONE#.",
    },
    Kind.INBOX_REPLY: {
        "subject": "Re: your message to #SITENAME#",
        "sms": "#SITENAME#: Hello #PATIENTFIRSTNAME#, thank you for your message. If it is "
        "urgent, call #SITEPHONE#.",
        "email": "Hello #PATIENTFIRSTNAME#,\n\nThank you for your message. If it is urgent, "
        "call us at #SITEPHONE#." + _SIGN,
        "call": "Hello, this is #SITENAME#, returning your message. Please call us at #SITEPHONE#.",
    },
    # The HELP answer (SPEC §7.2); STOP and START confirmations are in KEYWORD_REPLIES.
    Kind.KEYWORD_REPLY: {
        "subject": "About messages from #SITENAME#",
        "sms": "#SITENAME#: visit and order messages. Msg frequency varies. Msg & data rates "
        "may apply. Help: #SITEPHONE#. Reply STOP to opt out.",
        "email": "#SITENAME# sends messages about visits and orders; how often varies. "
        "For help, call #SITEPHONE#. To stop text messages, reply STOP to any of them."
        "\n\n#SITENAME#\n#SITEPHONE#",
        "call": "This is #SITENAME#. We send messages about visits and orders. For help, "
        "call #SITEPHONE#.",
    },
}

KEYWORD_REPLIES = {
    "help": TEXTS[Kind.KEYWORD_REPLY]["sms"],
    "stop": "#SITENAME#: you will get no more texts from us. Reply START to get them again. "
    "Help: #SITEPHONE#",
    "start": "#SITENAME#: texts are back on. Msg & data rates may apply. Reply STOP to opt "
    "out, HELP for help.",
}

# Short texts that answer the contact at once (SPEC §7.3): asking which visit a reply
# is about ({items} lists them, "1) Ana 12/02 3:30 PM"), and what a call says after a
# key press.
QUICK_REPLIES = {
    "pick_visit": "#SITENAME#: which visit? Reply with its number: {items}",
    "call_confirmed": "Thank you. Your visit is confirmed. Goodbye.",
    "call_key_unknown": "Sorry, that key does nothing. Please call us if you need help. Goodbye.",
}

LINK_LABELS = {
    "CONFIRMLINK": "Confirm or cancel",
    "REVIEWLINK": "Leave a review",
    "UNSUBSCRIBELINK": "Unsubscribe",
}
