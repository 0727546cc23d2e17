"""The redaction step of bot/logs.py: content fields and phone-shaped strings never reach a
log line, from our code or from libraries that log through the standard library."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from bot import logs


@pytest.fixture
def capture() -> Iterator[LogCapture]:
    """structlog's LogCapture placed after our redactors, as the renderer would be."""
    cap = LogCapture()
    structlog.configure(processors=[*logs.REDACTORS, cap])
    try:
        yield cap
    finally:
        structlog.reset_defaults()


def test_content_fields_are_dropped(capture: LogCapture) -> None:
    """Fields named for content (body, from, to, phone, text, location, note) are redacted
    whatever they hold."""
    structlog.get_logger().info(
        "inbound", body="he hurt me", From="+15551230001", to="x", location="Elm St", note="n"
    )
    (entry,) = capture.entries
    for key in ("body", "From", "to", "location", "note"):
        assert entry[key] == "[redacted]"


def test_phone_numbers_are_masked_in_any_string(capture: LogCapture) -> None:
    """A number that slipped into the event or any other string is masked, in E.164 and in
    national formats; short counts and ids survive."""
    structlog.get_logger().warning(
        "failed for +15551230001",
        detail="call (555) 123-0001 now",
        conversation_id=12,
        code="21610",
    )
    (entry,) = capture.entries
    assert "5551230001" not in entry["event"] and "[number]" in entry["event"]
    assert "123-0001" not in entry["detail"]
    assert entry["conversation_id"] == 12 and entry["code"] == "21610"


def test_stdlib_loggers_are_redacted_and_twilio_is_quiet() -> None:
    """Libraries logging through the standard library pass the same redactors; the twilio
    SDK's request dumps (numbers and bodies at INFO) are silenced."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogger("twilio").level)
    logs.configure("json", "info")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    try:
        logging.getLogger("twilio.http_client").info("POST To=+15551230001 Body=help me")
        logging.getLogger("aiohttp.server").error("peer +15551230001 reset")
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("twilio").setLevel(saved[2])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1
    assert "5551230001" not in lines[0]["event"] and "[number]" in lines[0]["event"]


def test_request_ids_and_addresses_are_not_mistaken_for_numbers(capture: LogCapture) -> None:
    """A hex request id or a host address with digits stays intact, so logs still match the
    X-Request-Id header and say where the server listens."""
    structlog.get_logger().info(
        "serving on http://127.0.0.1:8091", request_id="62e5551234567e64ba4"
    )
    (entry,) = capture.entries
    assert entry["event"] == "serving on http://127.0.0.1:8091"
    assert entry["request_id"] == "62e5551234567e64ba4"


def test_exceptions_keep_their_type_and_place_but_not_their_message(
    capture: LogCapture,
) -> None:
    """An exception's message can quote what a texter sent: only its type and where it was
    raised reach the log."""
    try:
        raise ValueError("bad number +15551230001 in 'he hurt me'")
    except ValueError:
        structlog.get_logger().exception("handler_failed")
    (entry,) = capture.entries
    assert entry["exception"].startswith("ValueError at ") and "test_logs.py" in entry["exception"]
    flat = json.dumps(entry, default=str)
    assert "5551230001" not in flat and "hurt" not in flat


class Rendered:
    """What reached stderr since the fixture started (pytest's capsys)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys, self.text = capsys, ""

    def getvalue(self) -> str:
        self.text += self.capsys.readouterr().err
        return self.text


@pytest.fixture
def rendered(capsys: pytest.CaptureFixture[str]) -> Iterator[Rendered]:
    """bot.logs.configure("json") as `serve` runs it; its lines read from stderr."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    logs.configure("json", "info")
    # No caching here: a logger cached now would keep this configuration in later tests.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield Rendered(capsys)
    finally:
        structlog.reset_defaults()
        root.handlers[:], root.level = saved


async def test_a_webhook_logs_one_line_with_its_outcome_and_no_content(
    rendered: Rendered, text: Any
) -> None:
    """One inbound SMS makes exactly one log line: the request line, which carries the
    webhook's outcome (conversation id, reply count, duplicate or not) and neither the
    texter's number nor their words."""
    start = len(rendered.getvalue())  # the app's start-up lines come before
    await text("he hurt me, I am scared", number="+15551230077")
    lines = [json.loads(line) for line in rendered.getvalue()[start:].splitlines()]
    requests = [line for line in lines if line["event"] == "request"]
    assert len(requests) == 1, lines
    (line,) = requests
    # Background work (timers, retention) may log meanwhile; this request made one line.
    assert [entry for entry in lines if "request_id" in entry] == [line], lines
    assert line["path"] == "/twilio/sms" and line["status"] == 200
    assert isinstance(line["conversation_id"], int) and line["replies"] >= 1
    assert line["duplicate"] is False and len(line["request_id"]) == 16
    flat = rendered.getvalue()
    assert "5551230077" not in flat and "hurt" not in flat and "scared" not in flat


def test_a_level_that_is_off_renders_nothing(rendered: Rendered) -> None:
    """At level info, a debug line writes nothing; an info line is written."""
    logs.get_logger("haven.test").debug("noisy", conversation_id=1)
    logs.get_logger("haven.test").info("kept", conversation_id=1)
    events = [json.loads(line)["event"] for line in rendered.getvalue().splitlines()]
    assert events == ["kept"]


def test_a_closed_stderr_drops_the_line_instead_of_failing_the_caller(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Logging writes to the stderr of the moment, and a line that cannot be written (a
    closed stream, as after a test's capture ends, or a broken pipe) is dropped: the code
    that logged goes on (a webhook must not fail after its message was stored)."""
    logs.get_logger("haven.test").info("first")
    assert json.loads(rendered.getvalue())["event"] == "first"
    closed = io.StringIO()
    closed.close()
    monkeypatch.setattr("sys.stderr", closed)
    logs.get_logger("haven.test").info("lost", conversation_id=1)  # no exception
    later = io.StringIO()
    monkeypatch.setattr("sys.stderr", later)
    logs.get_logger("haven.test").info("second")
    assert json.loads(later.getvalue())["event"] == "second"
