"""Content checks on what a patient will read or hear (SPEC §6.4).

Two strengths, kept apart on purpose:

- a **block** stops a message: it is recorded as undelivered with a reason code
  (`word_restricted` and the word found). Carriers filter cannabis-related content
  on application-to-person SMS (CTIA Messaging Principles, "SHAFT" content), so a
  pharmacy that mentions it risks its number; the check runs on every outbound
  text: automated, group and inbox replies.
- a **flag** is advice shown when a template is saved (minimum necessary, exempt
  SMS rules); the template is saved and its messages are sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from carebell.core import placeholders, segments
from carebell.core.vocab import CAPPED_KINDS, Channel, Kind

#: The reason code recorded on a blocked message (the reason catalogue's spelling).
WORD_RESTRICTED = "word_restricted"

#: Words that block a message unless a site sets its own list. Plurals are matched
#: by the checker, so only singular forms are listed.
DEFAULT_RESTRICTED_WORDS: tuple[str, ...] = (
    "cannabis", "cannabinoid", "cannabidiol", "cbd", "thc", "marijuana", "marihuana",
    "hemp", "delta-8", "delta-9", "dispensary", "ganja", "kush", "cáñamo",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Block:
    """A reason a message must not be sent."""

    reason: str
    word: str
    matched: str
    position: int

    @property
    def message(self) -> str:
        return f"restricted word {self.word!r} (found {self.matched!r} at {self.position})"


@dataclass(frozen=True, slots=True)
class Flag:
    """Advice on a template: shown to staff, never stops a message."""

    code: str
    message: str
    token: str = ""


def _word_pattern(word: str) -> str:
    stem = re.escape(word.strip().lower())
    plural = r"(?:s|es)?"
    if word.endswith("y") and len(word) > 2:
        # "dispensary" → "dispensaries"
        return rf"(?:{stem}|{re.escape(word[:-1].lower())}ies)"
    return stem + plural


@lru_cache(maxsize=256)
def _restricted_regex(words: tuple[str, ...]) -> re.Pattern[str] | None:
    patterns = sorted((_word_pattern(w) for w in words if w.strip()), key=len, reverse=True)
    if not patterns:
        return None
    # Whole words only: "thc" must not match inside "healthcare".
    return re.compile(rf"(?<!\w)(?:{'|'.join(patterns)})(?!\w)", re.IGNORECASE)


def find_restricted_words(
    text: str, words: Iterable[str] = DEFAULT_RESTRICTED_WORDS
) -> list[Block]:
    """Each restricted word in `text` (whole word, any case, singular or plural),
    in order. An empty list means the text may be sent."""
    listed = tuple(sorted({w.strip().lower() for w in words if w.strip()}))
    regex = _restricted_regex(listed)
    if regex is None:
        return []
    return [
        Block(WORD_RESTRICTED, _listed_word(m.group(), listed), m.group(), m.start())
        for m in regex.finditer(text)
    ]


def _listed_word(found: str, words: Iterable[str]) -> str:
    """The listed word a match came from ("Cannabinoids" → "cannabinoid")."""
    for word in words:
        if re.fullmatch(_word_pattern(word), found, re.IGNORECASE):
            return word.strip().lower()
    return found.lower()


def check_outbound(
    texts: Iterable[str], words: Iterable[str] = DEFAULT_RESTRICTED_WORDS
) -> Block | None:
    """The first reason the message made of `texts` (subject, body, HTML…) must not
    be sent, or None. Used on every outbound message at send time."""
    words = tuple(words)
    for text in texts:
        found = find_restricted_words(text or "", words)
        if found:
            return found[0]
    return None


# --- Template lint -------------------------------------------------------------------

#: Kinds sent under the healthcare exemption: they should be short and name the site.
EXEMPT_SMS_KINDS = CAPPED_KINDS


def lint_minimum_necessary(channel: Channel, text: str) -> list[Flag]:
    """Flags for placeholders that put a drug name or a diagnosis into an SMS or a
    call, which anyone holding the phone may read or hear (HIPAA minimum necessary).
    Email is exempt from this lint: it is addressed to one person and can be longer
    about what the message is for."""
    if Channel(channel) is Channel.EMAIL:
        return []
    flags = []
    for name in dict.fromkeys(placeholders.placeholders_in(text)):
        entry = placeholders.CATALOGUE.get(name)
        if entry and entry.sensitivity:
            flags.append(
                Flag(
                    "minimum_necessary",
                    f"#{name}# puts a {entry.sensitivity} name in a {channel} message; "
                    "anyone with the phone can read or hear it",
                    f"#{name}#",
                )
            )
    return flags


def lint_exempt_sms(
    kind: Kind, body: str, rendered: str, site_name: str | None = None
) -> list[Flag]:
    """Flags for an exempt appointment or treatment SMS that does not name the site
    (neither #SITENAME# nor the site's name in the text) or that takes more than one
    segment once rendered (`rendered` is the body filled with sample data)."""
    if Kind(kind) not in EXEMPT_SMS_KINDS:
        return []
    flags = []
    names_site = "#SITENAME#" in body or bool(site_name and site_name.lower() in body.lower())
    if not names_site:
        flags.append(Flag("site_not_named", "say who is writing: add #SITENAME#"))
    parts = segments.count(rendered).segments
    if parts > 1:
        flags.append(
            Flag("over_one_segment", f"takes {parts} segments; exempt messages should fit in one")
        )
    return flags


_STOP_HINT = re.compile(r"\bSTOP\b")
#: Kinds whose SMS answers the contact directly and so carries no opt-out hint.
_NO_STOP_HINT_KINDS = frozenset({Kind.VERIFICATION, Kind.INBOX_REPLY, Kind.KEYWORD_REPLY})


def lint_stop_hint(kind: Kind, body: str) -> list[Flag]:
    """A flag for an automated SMS that does not tell the contact how to opt out
    (the word STOP), which carriers expect on application-to-person messages."""
    if Kind(kind) in _NO_STOP_HINT_KINDS or _STOP_HINT.search(body):
        return []
    return [
        Flag("no_opt_out_hint", "tell the contact how to opt out, e.g. 'Reply STOP to opt out'")
    ]


def lint_template(
    channel: Channel, kind: Kind, body: str, rendered: str, site_name: str | None = None
) -> list[Flag]:
    """All template flags for `channel` and `kind`: minimum necessary for SMS and
    calls; for SMS also the exempt-message rules and the opt-out hint."""
    flags = lint_minimum_necessary(channel, body)
    if Channel(channel) is Channel.SMS:
        flags += lint_exempt_sms(kind, body, rendered, site_name)
        flags += lint_stop_hint(kind, body)
    return flags
