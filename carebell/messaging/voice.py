"""Voice webhooks: what to say when a call is answered, and what a key press does.

The call's words were rendered when it was sent (stored on the outbox row); a key
press on an appointment call confirms (1) or asks to cancel (2) through the same
`answers` code as a text reply.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carebell.core.vocab import Channel
from carebell.formats.service import quick_reply
from carebell.messaging import answers, rendering
from carebell.messaging.hooks import called_url
from carebell.messaging.models import DeliveryAttempt, OutboxMessage
from carebell.providers.base import OutgoingMessage
from carebell.providers.registry import provider_by_name
from carebell.providers.twilio_voice import (
    TwilioVoiceProvider,
    answer_twiml,
    parse_keypress,
    say_twiml,
)

TWIML = "text/xml"


def _verified_attempt(request: HttpRequest, attempt_id: int) -> DeliveryAttempt | None:
    """The attempt the call belongs to, if the request is signed by its provider."""
    attempt = (
        DeliveryAttempt.objects.select_related("message__site__delivery")
        .filter(id=attempt_id)
        .first()
    )
    if attempt is None:
        return None
    provider = provider_by_name(attempt.provider)
    if provider is None:
        return None
    url = called_url(request)
    return attempt if provider.verify_signature(url, request.POST, request.headers) else None


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text.strip())
    return match.group(1) if match else text


@csrf_exempt
@require_POST
def call_answered(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = _verified_attempt(request, attempt_id)
    if attempt is None:
        return HttpResponseForbidden("invalid signature")
    message = attempt.message
    outgoing = OutgoingMessage(
        attempt_id=attempt.id,
        channel=Channel.CALL,
        to=message.to_address,
        sender="",
        body=message.body,
        language=message.language,
        kind=message.kind,
    )
    # An answering machine hears only the opening sentence: it cannot press keys.
    script = TwilioVoiceProvider.script_for(outgoing, short_body=_first_sentence(message.body))
    return HttpResponse(answer_twiml(script, request.POST.get("AnsweredBy", "")), TWIML)


@csrf_exempt
@require_POST
def key_pressed(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = _verified_attempt(request, attempt_id)
    if attempt is None:
        return HttpResponseForbidden("invalid signature")
    message = attempt.message
    language = message.language
    keypress = parse_keypress(request.POST, attempt_id)
    if not keypress.action or message.entity_type != "appointment":
        return HttpResponse(say_twiml(quick_reply("call_key_unknown", language), language), TWIML)
    ids = message.entity_ids or [message.entity_id]
    answered = answers.answer_appointments(
        message.site, answers.Answer(keypress.action), ids, via="call", now=timezone.now()
    )
    return HttpResponse(say_twiml(_spoken_reply(message, answered), language), TWIML)


def _spoken_reply(message: OutboxMessage, answered) -> str:
    kinds = [kind for _, kind in answered if kind is not None]
    if not kinds:
        return quick_reply("call_confirmed", message.language)
    draft = OutboxMessage(
        site=message.site,
        patient_id=message.patient_id,
        channel=Channel.CALL,
        kind=kinds[0],
        language=message.language,
        entity_type="appointment",
        entity_id=message.entity_id,
        entity_ids=message.entity_ids,
    )
    rendering.render_batch([draft])
    return draft.body
