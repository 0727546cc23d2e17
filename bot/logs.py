"""Logging: structlog for our code and the standard library's, one redaction step for both.

Rule 4: no phone number or message text in any log line. We never pass them to a logger; the
redaction processors are the second line of defence: they drop fields whose names mean content
and mask anything shaped like a phone number in every string that remains.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import MutableMapping
from typing import Any

import structlog

# Field names that would carry content or numbers. Dropped, not masked: their length leaks too.
CONTENT_KEYS = frozenset(
    {"body", "text", "message_text", "phone", "from", "from_", "to", "number", "location", "note"}
)
# E.164 and most national formats: 7+ digits with optional separators, standing alone (not
# inside a hex request id, and not a dotted address like 127.0.0.1).
_PHONE = re.compile(
    r"(?<![\w.:])\+?\d[\d\s()-]{5,}\d(?![\w.:])|(?<![\w:])\d{3}\.\d{3}\.\d{4}(?![\w.])"
)

EventDict = MutableMapping[str, Any]


def drop_content_fields(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in [k for k in event_dict if k.lower() in CONTENT_KEYS]:
        event_dict[key] = "[redacted]"
    return event_dict


def mask_phone_numbers(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key, value in event_dict.items():
        if isinstance(value, str) and key != "timestamp":
            event_dict[key] = _PHONE.sub("[number]", value)
    return event_dict


def exception_type_only(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """A traceback's messages can quote texter input: keep the exception's type and the
    place it was raised, never its message or locals."""
    exc_info = event_dict.pop("exc_info", None)
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if isinstance(exc_info, tuple) and exc_info[0] is not None:
        tb = exc_info[2]
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb is not None else ""
        event_dict["exception"] = f"{exc_info[0].__name__} at {where}"
    event_dict.pop("exception_text", None)
    return event_dict


REDACTORS = (exception_type_only, drop_content_fields, mask_phone_numbers)


class StderrLogger:
    """Where structlog writes our rendered lines: whatever sys.stderr is at the time of
    the write (not when logging was configured), one write per line under a lock. A line
    that cannot be written (stderr closed, a broken pipe) is dropped: logging never fails
    the request or the work that logged."""

    _lock = threading.Lock()

    def msg(self, message: str) -> None:
        try:
            with self._lock:
                sys.stderr.write(message + "\n")
        except (OSError, ValueError):
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _stderr_logger(*_args: Any) -> StderrLogger:
    return StderrLogger()


def configure(log_format: str = "auto", level: str = "info") -> None:
    """Set up structlog and route the standard library's logging through it."""
    if log_format == "auto":
        log_format = "console" if sys.stderr.isatty() else "json"
    renderer: Any = (
        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        *REDACTORS,
    ]
    # Our own lines skip the standard library (a LogRecord, a handler, a formatter per
    # line): structlog renders and writes them itself, and a level that is off costs one
    # method call that returns at once (make_filtering_bound_logger). Libraries that log
    # through the standard library still pass the same processors, through the handler.
    structlog.configure(
        processors=[*shared, renderer],
        logger_factory=_stderr_logger,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The twilio SDK logs whole API requests (numbers and bodies) at INFO.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    # We log our own request lines (without query strings) in a middleware.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # transitions narrates every callback at INFO: noise, two lines per message.
    logging.getLogger("transitions").setLevel(logging.WARNING)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
