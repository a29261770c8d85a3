"""The phrases that flag a text as a possible opt-out, in English and Spanish, and
texts that must not be flagged (SPEC §7.2): a flag only asks a person to look."""

from __future__ import annotations

import pytest

from carebell.core.keywords import Intent, read_reply


@pytest.mark.parametrize(
    "body",
    [
        "please stop",
        "Please stop texting me",
        "unsubscribe me",
        "Take me off your list",
        "do not text this number",
        "Don’t message me again",
        "no más mensajes",
        "No me escriban más",
        "Quiero darme de baja",
        "no quiero recibir más mensajes",
        "cancelar la suscripción",
        "Basta ya",
    ],
)
def test_a_request_to_stop_in_other_words_is_flagged(body):
    assert read_reply(body).intent is Intent.POSSIBLE_OPT_OUT


@pytest.mark.parametrize(
    "body",
    ["See you Tuesday", "no quiero cancelar", "Can we come at 4?", "Gracias, ahí estaremos"],
)
def test_ordinary_texts_are_not_flagged(body):
    assert read_reply(body).intent is Intent.FREE_TEXT


@pytest.mark.parametrize("body", ["STOP", " stop! ", "Unsubscribe", "opt out"])
def test_the_keywords_themselves_still_opt_out(body):
    assert read_reply(body).intent is Intent.OPT_OUT
