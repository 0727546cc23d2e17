"""Settings.from_env: what a misconfiguration is told, before anything starts."""

from __future__ import annotations

import pytest

from bot.settings import Settings, SettingsError
from bot.sms.sender import FictionAwareSender, TwilioSender, make_sender

KEY = "k" * 40
SID = "AC" + "1" * 32
PRODUCTION = {"HAVEN_ENV": "production", "HAVEN_SECRET_KEY": KEY, "TWILIO_AUTH_TOKEN": "tok"}


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({}, "TWILIO_ACCOUNT_SID"),  # a token alone: replies would "send" to the console
        ({"TWILIO_ACCOUNT_SID": SID}, "TWILIO_FROM_NUMBER"),
        ({"TWILIO_FROM_NUMBER": "+15005550006"}, "TWILIO_ACCOUNT_SID"),
    ],
)
def test_production_refuses_without_a_real_sender(extra: dict[str, str], named: str) -> None:
    """HAVEN_ENV=production needs an account SID, a token and a from-number or messaging
    service: anything less would show texts as sent that never left (the console sender)."""
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({**PRODUCTION, **extra})


@pytest.mark.parametrize("env", ["development", "production"])
def test_sid_and_token_without_a_from_number_is_an_error_anywhere(env: str) -> None:
    """An account with nothing to text from is a clear error in every environment."""
    environ = {"HAVEN_ENV": env, "HAVEN_SECRET_KEY": KEY}
    environ |= {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "tok"}
    with pytest.raises(SettingsError, match=r"TWILIO_FROM_NUMBER.*TWILIO_MESSAGING_SERVICE_SID"):
        Settings.from_env(environ)


def test_a_from_number_must_be_e164() -> None:
    """A mistyped from-number is caught at start-up, not at the first text."""
    environ = {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": "t", "TWILIO_FROM_NUMBER": "555"}
    with pytest.raises(SettingsError, match="TWILIO_FROM_NUMBER"):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    "sender", [{"TWILIO_FROM_NUMBER": "+15005550006"}, {"TWILIO_MESSAGING_SERVICE_SID": "MG1"}]
)
def test_production_with_a_full_account_uses_twilio(sender: dict[str, str]) -> None:
    """With SID, token and a from-number (or messaging service) production starts on the
    real Twilio sender."""
    settings = Settings.from_env({**PRODUCTION, "TWILIO_ACCOUNT_SID": SID, **sender})
    made = make_sender(settings)
    assert isinstance(made, FictionAwareSender) and isinstance(made.real, TwilioSender)


def test_make_sender_never_falls_back_to_the_console_in_production() -> None:
    """Settings built in code (not from_env) with production and no account still cannot
    get the console sender."""
    with pytest.raises(ValueError, match="production"):
        make_sender(Settings(env="production", secret_key=KEY, twilio_auth_token="t"))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAVEN_TWILIO_TIMEOUT", "soon"),
        ("HAVEN_TWILIO_TIMEOUT", "0"),
        ("HAVEN_OUTBOX_CONCURRENCY", "0"),
        ("PORT", "eighty"),
    ],
)
def test_bad_numbers_name_the_variable(name: str, value: str) -> None:
    """A malformed number names the variable it came from."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})
