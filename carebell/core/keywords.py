"""What an inbound text means (SPEC §7.2, §7.3), decided before anything else.

Opt-out words are matched exactly after case, spaces and punctuation are ignored,
as carriers and the CTIA handbook expect. CANCEL is an opt-out word, so an
appointment is cancelled with X, N or 2 instead. Texts that sound like an opt-out
but are not a keyword go to staff, flagged, rather than being guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum


class Intent(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    CONFIRM = "confirm"
    CANCEL = "cancel"
    CHOICE = "choice"
    POSSIBLE_OPT_OUT = "possible_opt_out"
    FREE_TEXT = "free_text"


OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CONFIRM_WORDS = frozenset({"C", "Y", "1", "CONFIRM"})
CANCEL_WORDS = frozenset({"X", "N", "2"})

# Phrases people use instead of the keyword, in carebell's languages. Matching one
# flags the text for staff; it never opts out by itself (a guess could silence
# someone who only meant "stop the reminders for Tuesday").
_POSSIBLE_OPT_OUT = re.compile(
    r"\b(stop|quit|unsubscribe|opt ?out|no more|don'?t (text|message|contact)|"
    r"do not (text|message|contact)|take me off|remove me|leave me alone|"
    r"no mas|dejen de|ya no|baja|basta|no quiero (recibir )?(mas )?(mensajes|textos)|"
    r"desuscrib\w*|cancelar (la )?suscripcion|"
    r"no (me )?(escriban|envien|manden|contacten))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Reading:
    intent: Intent
    choice: int | None = None  # the number picked, for CHOICE


def normalise(body: str) -> str:
    """Upper case, accents, spaces and punctuation removed: " Stop! " → "STOP"."""
    folded = unicodedata.normalize("NFKD", body)
    return "".join(ch for ch in folded if ch.isalnum()).upper()


def read_reply(body: str, *, opted_out: bool = False, choices: int = 0) -> Reading:
    """The intent of an inbound text. `opted_out` makes YES an opt-in (SPEC §7.2);
    `choices` > 0 means the contact was asked to pick among that many items, so a
    number from 1 to `choices` is a pick, not a confirm or cancel."""
    word = normalise(body)
    if word in OPT_OUT_WORDS:
        return Reading(Intent.OPT_OUT)
    if word in OPT_IN_WORDS or (opted_out and word == "YES"):
        return Reading(Intent.OPT_IN)
    if word in HELP_WORDS:
        return Reading(Intent.HELP)
    if choices and word.isdigit() and 1 <= int(word) <= choices:
        return Reading(Intent.CHOICE, int(word))
    if word in CONFIRM_WORDS:
        return Reading(Intent.CONFIRM)
    if word in CANCEL_WORDS:
        return Reading(Intent.CANCEL)
    plain = unicodedata.normalize("NFKD", body).encode("ascii", "ignore").decode()
    if _POSSIBLE_OPT_OUT.search(plain):
        return Reading(Intent.POSSIBLE_OPT_OUT)
    return Reading(Intent.FREE_TEXT)
