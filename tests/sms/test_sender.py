"""The senders: the real twilio SDK against a local fake Twilio, and the console sender."""

from __future__ import annotations

import io

import pytest

from bot.settings import Settings
from bot.sms.sender import (
    ConsoleSender,
    FictionAwareSender,
    SendError,
    TwilioSender,
    make_sender,
    mask_number,
)
from tests.sms.fake_twilio import FakeTwilio

TO = "+15551234542"
CALLBACK = "https://haven.example.org/twilio/status"


async def test_twilio_success_returns_sid_and_sends_the_right_form(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """One send makes one authenticated request with To, From, Body and StatusCallback, and
    returns the SID Twilio gave."""
    sender = TwilioSender(twilio_settings)
    try:
        sid = await sender.send(TO, "hello there", CALLBACK)
    finally:
        await sender.close()
    assert len(fake_twilio.requests) == 1
    (got,) = fake_twilio.messages
    assert sid == got.sid and sid.startswith("SM")
    assert got.account_sid == fake_twilio.account_sid
    assert got.form == {
        "To": TO,
        "From": "+15005550006",
        "Body": "hello there",
        "StatusCallback": CALLBACK,
    }


async def test_messaging_service_used_when_no_from_number(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """With only a Messaging Service SID configured, it is sent instead of From."""
    settings = twilio_settings.with_(twilio_from_number="", twilio_messaging_service_sid="MG1")
    sender = TwilioSender(settings)
    try:
        await sender.send(TO, "hi", None)
    finally:
        await sender.close()
    (got,) = fake_twilio.messages
    assert got.form.get("MessagingServiceSid") == "MG1"
    assert "From" not in got.form and "StatusCallback" not in got.form


@pytest.mark.parametrize(("status", "code"), [(500, 20500), (503, 20503), (429, 20429)])
async def test_server_errors_and_rate_limits_are_transient(
    fake_twilio: FakeTwilio, twilio_settings: Settings, status: int, code: int
) -> None:
    """5xx and 429 raise a transient SendError carrying Twilio's code; the next attempt,
    made by the caller, succeeds and exactly one message is accepted."""
    fake_twilio.fail_next(1, status, code)
    sender = TwilioSender(twilio_settings)
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", CALLBACK)
        assert info.value.permanent is False
        assert info.value.code == str(code)
        assert info.value.status == status
        sid = await sender.send(TO, "hi", CALLBACK)
    finally:
        await sender.close()
    assert [m.sid for m in fake_twilio.messages] == [sid]
    assert len(fake_twilio.requests) == 2


@pytest.mark.parametrize("code", [21610, 21211, 21614])
async def test_permanent_errors(
    fake_twilio: FakeTwilio, twilio_settings: Settings, code: int
) -> None:
    """Opted out (21610), invalid number (21211) and the like are permanent."""
    fake_twilio.fail_next(1, 400, code)
    sender = TwilioSender(twilio_settings)
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", CALLBACK)
    finally:
        await sender.close()
    assert info.value.permanent is True
    assert info.value.code == str(code)
    assert fake_twilio.messages == []


async def test_error_text_never_carries_the_number_or_body(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """Twilio's error messages can quote the number; a SendError's text and chain do not."""
    fake_twilio.fail_next(1, 400, 21211)
    sender = TwilioSender(twilio_settings)
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "secret words", CALLBACK)
    finally:
        await sender.close()
    text = str(info.value)
    assert "5551234542" not in text and "secret" not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


async def test_wrong_credentials_are_permanent(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """A 401 will not fix itself by retrying: permanent, code 20003."""
    sender = TwilioSender(twilio_settings.with_(twilio_auth_token="wrong"))
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", None)
    finally:
        await sender.close()
    assert (info.value.permanent, info.value.code) == (True, "20003")


async def test_connection_refused_is_transient(
    twilio_settings: Settings, closed_port_url: str
) -> None:
    """A network failure (nothing listening) is a transient 'network' error."""
    sender = TwilioSender(twilio_settings.with_(twilio_api_base=closed_port_url))
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", None)
    finally:
        await sender.close()
    assert (info.value.permanent, info.value.code) == (False, "network")


def test_twilio_sender_needs_a_sender_identity(twilio_settings: Settings) -> None:
    """Without a From number or Messaging Service the error says so at start-up."""
    with pytest.raises(ValueError, match="TWILIO_FROM_NUMBER"):
        TwilioSender(twilio_settings.with_(twilio_from_number=""))


async def test_console_sender_prints_masked_and_keeps_recent() -> None:
    """The console sender prints the last two digits and the body, returns a console SID,
    and keeps only the newest N messages."""
    out = io.StringIO()
    sender = ConsoleSender(stream=out, keep=2)
    sids = [await sender.send(TO, f"message {i}", None) for i in range(3)]
    assert all(s.startswith("SMconsole") for s in sids) and len(set(sids)) == 3
    lines = out.getvalue().splitlines()
    assert lines[0] == "[to texter …42] message 0"
    assert all("5551234" not in line for line in lines)
    assert sender.sent == [(TO, "message 1"), (TO, "message 2")]
    await sender.close()


async def test_console_sender_defaults_to_current_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With no stream given, output goes to whatever sys.stdout is at send time."""
    await ConsoleSender().send(TO, "hi", None)
    assert capsys.readouterr().out == "[to texter …42] hi\n"


def test_make_sender_picks_by_account(twilio_settings: Settings) -> None:
    """Twilio credentials give Twilio (behind the training guard); none give the console."""
    chosen = make_sender(twilio_settings)
    assert isinstance(chosen, FictionAwareSender) and isinstance(chosen.real, TwilioSender)
    assert isinstance(make_sender(Settings()), ConsoleSender)


async def test_role_play_numbers_never_reach_twilio(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """Training mode's fictional 555-01xx texters get the console sender even on a live
    deployment; real numbers still go through Twilio."""
    sender = make_sender(twilio_settings)
    assert isinstance(sender, FictionAwareSender)
    try:
        fake_sid = await sender.send("+12025550142", "practice reply", CALLBACK)
        real_sid = await sender.send(TO, "real reply", CALLBACK)
    finally:
        await sender.close()
    assert fake_sid.startswith("SMconsole") and real_sid.startswith("SM")
    assert not real_sid.startswith("SMconsole")
    assert [m.form["To"] for m in fake_twilio.messages] == [TO]
    assert sender.sent == [("+12025550142", "practice reply")]


def test_mask_number() -> None:
    """Only the last two digits survive."""
    assert mask_number("+1 (555) 123-4542") == "…42"


async def test_a_late_answer_is_an_uncertain_outcome_not_a_transient_one(
    fake_twilio: FakeTwilio, twilio_settings: Settings
) -> None:
    """Twilio accepted the text but answered after the per-request timeout (from settings):
    the SendError says 'uncertain' (do not resend), code 'timeout', within the timeout."""
    import time

    fake_twilio.delay_next(1, 30.0)
    sender = TwilioSender(twilio_settings.with_(twilio_timeout=0.5))
    started = time.perf_counter()
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", CALLBACK)
    finally:
        await sender.close()
    assert time.perf_counter() - started < 5
    assert (info.value.uncertain, info.value.permanent, info.value.code) == (True, False, "timeout")
    assert len(fake_twilio.messages) == 1


async def test_connection_refused_is_transient_not_uncertain(
    twilio_settings: Settings, closed_port_url: str
) -> None:
    """Nothing listening: the request never reached Twilio, so retrying is safe."""
    sender = TwilioSender(twilio_settings.with_(twilio_api_base=closed_port_url))
    try:
        with pytest.raises(SendError) as info:
            await sender.send(TO, "hi", CALLBACK)
    finally:
        await sender.close()
    assert (info.value.uncertain, info.value.permanent, info.value.code) == (
        False,
        False,
        "network",
    )
