"""Reading inbound texts: keywords first, exact after normalising; lookalikes flagged."""

from __future__ import annotations

import pytest

from carebell.core.keywords import Intent, read_reply


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop",
        " Stop! ",
        "S.T.O.P",
        "stopall",
        "Unsubscribe",
        "CANCEL",
        "end",
        "quit",
        "revoke",
        "optout",
        "opt out",
        "Opt-Out",
    ],
)
def test_opt_out_keywords_are_read_whatever_their_case_and_punctuation(body):
    assert read_reply(body).intent is Intent.OPT_OUT


@pytest.mark.parametrize("body", ["START", "unstop", "Start."])
def test_start_and_unstop_opt_back_in(body):
    assert read_reply(body).intent is Intent.OPT_IN


def test_yes_opts_in_only_an_opted_out_number():
    assert read_reply("YES", opted_out=True).intent is Intent.OPT_IN
    assert read_reply("YES").intent is Intent.FREE_TEXT


@pytest.mark.parametrize("body", ["HELP", "info", "Help?"])
def test_help_and_info_ask_for_help(body):
    assert read_reply(body).intent is Intent.HELP


@pytest.mark.parametrize("body", ["C", "y", "1", "confirm", "Confirm."])
def test_confirmation_answers(body):
    assert read_reply(body).intent is Intent.CONFIRM


@pytest.mark.parametrize("body", ["X", "n", "2"])
def test_cancellation_answers_never_use_the_word_cancel(body):
    assert read_reply(body).intent is Intent.CANCEL


@pytest.mark.parametrize(
    "body",
    ["please stop texting me", "No más mensajes", "remove me from this list", "don't text me"],
)
def test_texts_that_sound_like_an_opt_out_are_flagged_not_obeyed(body):
    assert read_reply(body).intent is Intent.POSSIBLE_OPT_OUT


def test_a_number_picks_among_listed_choices():
    reading = read_reply("2", choices=3)
    assert (reading.intent, reading.choice) == (Intent.CHOICE, 2)
    assert read_reply("4", choices=3).intent is Intent.FREE_TEXT


def test_ordinary_text_is_free_text():
    assert read_reply("Running 10 minutes late, sorry").intent is Intent.FREE_TEXT
