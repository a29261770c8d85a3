"""Twilio voice calls: the Calls API, TwiML `<Say>` in the message's language and a
one-key `<Gather>` (1 confirm, 2 cancel), with a shorter message for machines.

Flow (https://www.twilio.com/docs/voice/api/call-resource): carebell creates the
call with `Url` pointing at its own voice webhook and `MachineDetection=Enable`;
Twilio answers, detects who picked up and requests the Url with `AnsweredBy`
(https://www.twilio.com/docs/voice/answering-machine-detection). The webhook view
answers with `answer_twiml(...)`: the full script with a Gather for a person, the
short script and a hang-up for a machine (it cannot press keys). A key press is
POSTed to the Gather `action` and read with `parse_keypress`.

TwiML is built with twilio.twiml.voice_response, never by string concatenation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from twilio.twiml.voice_response import Gather, VoiceResponse

from carebell.core.vocab import Channel
from carebell.providers.base import Limits, OutgoingMessage, SendResult, StatusUpdate, Unsupported
from carebell.providers.twilio.sms import TwilioSmsProvider

#: carebell language → (Twilio <Say> language, voice). Amazon Polly voices through
#: Twilio: https://www.twilio.com/docs/voice/twiml/say/text-speech#available-voices-and-languages
VOICES = {
    "en": ("en-US", "Polly.Joanna"),
    "es": ("es-US", "Polly.Lupe"),
}

#: What the keys mean (SPEC §5.1, §7.3).
KEY_ACTIONS = {"1": "confirm", "2": "cancel"}

PROMPTS = {
    "en": "Press 1 to confirm. Press 2 to cancel.",
    "es": "Oprima 1 para confirmar. Oprima 2 para cancelar.",
}
NO_KEY = {
    "en": "We did not receive an answer. Goodbye.",
    "es": "No recibimos una respuesta. Adiós.",
}

#: CallStatus in a status callback → carebell status. Ringing and in-progress carry
#: nothing to record; busy / no-answer may succeed later, so they are not permanent.
CALL_STATUS = {
    "completed": ("delivered", False),
    "busy": ("undelivered", False),
    "no-answer": ("undelivered", False),
    "failed": ("failed", True),
    "canceled": ("failed", True),
}

#: Call resource status on create / lookup → SendResult.status.
CALL_RESOURCE_STATUS = {
    "queued": "queued",
    "initiated": "queued",
    "ringing": "sent",
    "in-progress": "sent",
    "completed": "delivered",
    "busy": "failed",
    "no-answer": "failed",
    "failed": "failed",
    "canceled": "failed",
}


@dataclass
class VoiceScript:
    """What to say on a call. `gather_url` empty means no key press is asked for."""

    body: str
    language: str = "en"
    short_body: str = ""
    gather_url: str = ""


@dataclass
class Keypress:
    """A key the callee pressed, from the Gather callback."""

    call_sid: str
    digits: str
    action: str  # confirm | cancel | "" (a key that means nothing)
    attempt_id: int | None = None
    from_number: str = ""
    to_number: str = ""


def voice_for(language: str) -> tuple[str, str]:
    """The <Say> language and voice for a carebell language (English by default)."""
    return VOICES.get(language.split("-")[0].lower(), VOICES["en"])


def is_machine(answered_by: str) -> bool:
    """True for Twilio's machine_start / machine_end_* / fax answers."""
    return answered_by.startswith("machine") or answered_by == "fax"


def answer_twiml(script: VoiceScript, answered_by: str = "") -> str:
    """The TwiML for the moment the call is answered."""
    language, voice = voice_for(script.language)
    response = VoiceResponse()
    if is_machine(answered_by):
        response.say(script.short_body or script.body, voice=voice, language=language)
        response.hangup()
        return str(response)
    if not script.gather_url:
        response.say(script.body, voice=voice, language=language)
        return str(response)
    gather = Gather(num_digits=1, action=script.gather_url, method="POST", timeout=8)
    gather.say(script.body, voice=voice, language=language)
    gather.say(_text(PROMPTS, script.language), voice=voice, language=language)
    response.append(gather)
    # Reached only when no key was pressed before the Gather timed out.
    response.say(_text(NO_KEY, script.language), voice=voice, language=language)
    return str(response)


def say_twiml(text: str, language: str = "en") -> str:
    """TwiML that says `text` and hangs up (the answer to a key press)."""
    twilio_language, voice = voice_for(language)
    response = VoiceResponse()
    response.say(text, voice=voice, language=twilio_language)
    response.hangup()
    return str(response)


def parse_keypress(data: Mapping[str, Any], attempt_id: int | None = None) -> Keypress:
    """The Gather callback's form fields as a Keypress."""
    digits = str(data.get("Digits", "")).strip()
    return Keypress(
        call_sid=data.get("CallSid", ""),
        digits=digits,
        action=KEY_ACTIONS.get(digits, ""),
        attempt_id=attempt_id,
        from_number=data.get("From", ""),
        to_number=data.get("To", ""),
    )


def parse_call_status(
    data: Mapping[str, Any], attempt_id: int | None = None
) -> StatusUpdate | None:
    """A Calls status callback as a StatusUpdate (None while ringing / in progress)."""
    raw = data.get("CallStatus", "")
    sid = data.get("CallSid", "")
    if raw not in CALL_STATUS or not sid:
        return None
    status, permanent = CALL_STATUS[raw]
    return StatusUpdate(
        provider_message_id=sid,
        status=status,
        attempt_id=attempt_id,
        error_code=str(data.get("ErrorCode", "") or ""),
        permanent=permanent,
        event_id=f"{sid}:{raw}",
        provider_status=raw,
    )


def _text(table: dict[str, str], language: str) -> str:
    return table.get(language.split("-")[0].lower(), table["en"])


def hook_url(kind: str, attempt_id: int) -> str:
    """carebell's voice webhooks for an attempt: kind is 'voice' or 'gather'."""
    base = getattr(settings, "BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    return f"{base}/hooks/twilio/{kind}/{attempt_id}"


class TwilioVoiceProvider(TwilioSmsProvider):
    """Calls over the same REST client, auth, error table and signatures as SMS."""

    name = "twilio_voice"
    # Twilio caps inline TwiML and <Say> text at 4,000 characters.
    limits = Limits(channels=frozenset({Channel.CALL}), max_body_chars=4000, supports_lookup=True)
    resource_name = "Calls"
    resource_status = CALL_RESOURCE_STATUS

    def message_form(self, message: OutgoingMessage) -> dict[str, str]:
        # A call needs a phone number as caller id; a Messaging Service cannot call.
        sender = message.sender if message.sender.startswith("+") else self.config.sender
        form = {
            "To": message.to,
            "From": sender,
            "Url": hook_url("voice", message.attempt_id),
            "Method": "POST",
            "MachineDetection": "Enable",
        }
        if message.status_callback_url:
            form["StatusCallback"] = message.status_callback_url
        return form

    def parse_status(
        self, data: Mapping[str, Any], attempt_id: int | None = None
    ) -> StatusUpdate | None:
        return parse_call_status(data, attempt_id)

    async def find_sent(self, session, message: OutgoingMessage, since) -> SendResult | None:
        # A call has no body to match it by: one whose answer was lost is settled by
        # its status callback (or ends unconfirmed), never by calling twice.
        raise Unsupported("twilio call search")

    @staticmethod
    def script_for(message: OutgoingMessage, short_body: str = "") -> VoiceScript:
        """The script for an attempt; appointment calls ask for a key."""
        asks = str(message.kind).startswith("appt_")
        gather = hook_url("gather", message.attempt_id) if asks else ""
        return VoiceScript(message.body, message.language, short_body, gather)
