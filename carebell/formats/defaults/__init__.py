"""The templates every site starts with, for every kind × channel × language.

The wording lives in `en.py` and `es.py` (one entry per kind); this module shapes it
into templates: an email gets its subject, its plain text and an HTML part laid out
from that text; an SMS or a call has a body only.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

from carebell.core.vocab import FORMAT_KINDS, Channel, Kind
from carebell.formats.defaults import en, es

LANGUAGES = ("en", "es")
_WORDING = {"en": en, "es": es}


@dataclass(frozen=True, slots=True)
class DefaultTemplate:
    kind: Kind
    channel: Channel
    language: str
    name: str
    subject: str
    body: str
    html_body: str


def default_template(kind: Kind, channel: Channel, language: str) -> DefaultTemplate:
    """carebell's default template for `kind` over `channel` in `language` ("en" or
    "es"; a regional code such as "es-MX" uses its base). Raises ValueError for a
    language carebell has no defaults in."""
    kind, channel = Kind(kind), Channel(channel)
    language = _base_language(language)
    wording = _WORDING[language]
    texts = wording.TEXTS[kind]
    name = f"{kind.value.replace('_', ' ').capitalize()} ({channel}, {language})"
    if channel is Channel.EMAIL:
        body = texts["email"]
        return DefaultTemplate(
            kind, channel, language, name, texts["subject"], body, email_html_for(body, language)
        )
    key = "sms" if channel is Channel.SMS else "call"
    # SMS and call formats keep a subject as their label, as staff expect to see one.
    return DefaultTemplate(kind, channel, language, name, texts["subject"], texts[key], "")


def all_defaults() -> list[DefaultTemplate]:
    """Every default template, for seeding a new site."""
    return [
        default_template(kind, channel, language)
        for kind in FORMAT_KINDS
        for channel in Channel
        for language in LANGUAGES
    ]


def keyword_reply(keyword: str, language: str) -> str:
    """The SMS answer to HELP, STOP or START (keyword in lower case)."""
    return _WORDING[_base_language(language)].KEYWORD_REPLIES[keyword]


def quick_reply(name: str, language: str) -> str:
    """A short fixed answer: "pick_visit", "call_confirmed" or "call_key_unknown".
    Unknown languages fall back to English (the contact is waiting for an answer)."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return _WORDING.get(base, en).QUICK_REPLIES[name]


def _base_language(language: str) -> str:
    base = (language or "").split("-")[0].split("_")[0].lower()
    if base not in _WORDING:
        raise ValueError(f"no default templates in {language!r}; carebell has {LANGUAGES}")
    return base


_LINK = re.compile(r"#(CONFIRMLINK|REVIEWLINK|UNSUBSCRIBELINK)#")
_LAYOUT = (
    '<!doctype html>\n<html><body style="font-family:Arial,Helvetica,sans-serif;'
    'font-size:16px;line-height:1.5;color:#222;max-width:600px">\n{paragraphs}\n'
    "</body></html>\n"
)


def email_html_for(text: str, language: str) -> str:
    """The HTML part of an email whose plain text is `text` — a default format's, or
    the words staff wrote for a group or one-off message — laid out as every
    carebell email is, its links labelled in `language` (English labels for a
    language carebell has no wording in: the link matters more than its label)."""
    base = (language or "").split("-")[0].split("_")[0].lower()
    return email_html(text, _WORDING.get(base, en).LINK_LABELS)


def email_html(text: str, link_labels: dict[str, str]) -> str:
    """The HTML part of an email laid out from its plain text: one paragraph per
    block, line breaks kept, each link placeholder turned into a labelled link."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    paragraphs = "\n".join(_paragraph(block, link_labels) for block in blocks)
    return _LAYOUT.format(paragraphs=paragraphs)


def _paragraph(block: str, link_labels: dict[str, str]) -> str:
    inner = html.escape(block, quote=False).replace("\n", "<br>\n")
    inner = _LINK.sub(
        lambda m: f'<a href="{m.group()}">{html.escape(link_labels[m.group(1)])}</a>', inner
    )
    return f"<p>{inner}</p>"
