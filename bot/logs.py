"""Logging: structlog for our code and the standard library's, one redaction step for both.

Rule 4: no phone number or message text in any log line. We never pass them to a logger; the
redaction processors are the second line of defence: they drop fields whose names mean content
and mask anything shaped like a phone number in every string that remains.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Field names that would carry content or numbers. Dropped, not masked: their length leaks too.
CONTENT_KEYS = frozenset(
    {"body", "text", "message_text", "phone", "from", "from_", "to", "number", "location", "note"}
)
# E.164 and most national formats: 7+ digits with optional separators.
_PHONE = re.compile(r"\+?\d[\d\s().-]{5,}\d")

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


REDACTORS = (drop_content_fields, mask_phone_numbers)


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
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
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


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
