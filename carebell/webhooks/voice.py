"""Voice webhooks: what to say when a call is answered, and what a key press does.

The call's words were rendered when it was sent (stored on the outbox row); a key
press on an appointment call confirms (1) or asks to cancel (2) through the same
`answers` code as a text reply, once per call (a replayed callback changes nothing).
Only call attempts have these hooks: any other attempt id is 404.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from carebell.core.vocab import Channel, EntityType
from carebell.dispatch import rendering
from carebell.formats.service import quick_reply
from carebell.messaging.models import DeliveryAttempt, OutboxMessage
from carebell.providers.base import OutgoingMessage
from carebell.providers.twilio.voice import (
    TwilioVoiceProvider,
    answer_twiml,
    parse_keypress,
    say_twiml,
)
from carebell.twoway import answers
from carebell.web.lane import machine_hook
from carebell.webhooks import views as hooks

TWIML = "text/xml"


def _verified_call(request: HttpRequest, attempt_id: int) -> DeliveryAttempt | HttpResponse:
    """The call attempt the request is about, or the answer refusing it: 404 when the
    attempt is not a call (or its provider is not here), else `hooks.refusal`'s."""
    attempt = (
        DeliveryAttempt.objects.select_related("message__site__delivery")
        .filter(id=attempt_id, message__channel=Channel.CALL)
        .first()
    )
    provider = hooks.provider_for(attempt.provider) if attempt is not None else None
    if provider is None or Channel.CALL not in provider.limits.channels:
        return HttpResponseNotFound("no such call")
    refused = hooks.refusal(provider, attempt.provider, request)
    return attempt if refused is None else refused


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text.strip())
    return match.group(1) if match else text


@machine_hook
@csrf_exempt
@require_POST
def call_answered(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = _verified_call(request, attempt_id)
    if isinstance(attempt, HttpResponse):
        return attempt
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


@machine_hook
@csrf_exempt
@require_POST
def key_pressed(request: HttpRequest, attempt_id: int) -> HttpResponse:
    attempt = _verified_call(request, attempt_id)
    if isinstance(attempt, HttpResponse):
        return attempt
    message = attempt.message
    language = message.language
    keypress = parse_keypress(request.POST, attempt_id)
    answer = answers.read_answer(keypress.action)
    if answer is None or message.entity_type != EntityType.APPOINTMENT:
        return HttpResponse(say_twiml(quick_reply("call_key_unknown", language), language), TWIML)
    answered = answers.answer_appointments(
        message.site,
        answer,
        message.entity_ids or [message.entity_id],
        via="call",
        now=timezone.now(),
        address=message.to_address,
        key_press=answers.KeyPress(
            attempt.id, attempt.provider, keypress.digits, dict(request.POST.items())
        ),
    )
    return HttpResponse(say_twiml(_spoken_reply(message, answered), language), TWIML)


def _spoken_reply(message: OutboxMessage, answered: list[answers.Answered]) -> str:
    kinds = [a.reply_kind for a in answered if a.reply_kind is not None]
    if not kinds:
        return quick_reply("call_confirmed", message.language)
    draft = OutboxMessage(
        site=message.site,
        patient_id=message.patient_id,
        channel=Channel.CALL,
        kind=kinds[0],
        language=message.language,
        entity_type=EntityType.APPOINTMENT,
        entity_id=message.entity_id,
        entity_ids=message.entity_ids,
    )
    rendering.render_batch([draft])
    return draft.body
