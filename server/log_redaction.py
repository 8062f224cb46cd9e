"""Logging for every Clarion process, with personal data and secrets masked.

Log lines carry provider answers and exception texts that we do not write
ourselves ("The 'To' number +14155550123 is not a valid phone number"), so
the mask is applied to every record at the handler, not at each call site.
Message bodies are never logged on purpose; SQLAlchemy's bound parameters
are hidden by the engine (`hide_parameters`)."""

import logging
import re

from opentelemetry import trace

_MASKS = [
    # API keys: the prefix identifies the kind; the rest is the secret.
    (re.compile(r"\bclk_[A-Za-z0-9_-]{8,}"), "clk_[redacted]"),
    # Argon2 password hashes.
    (re.compile(r"\$argon2[a-z]*\$[^\s'\"]+"), "$argon2[redacted]"),
    # Phone numbers in E.164 (and WhatsApp's digits-only form after "to"):
    # the last two digits stay, enough to tell two numbers apart in a log.
    (re.compile(r"\+\d{4,13}(\d{2})\b"), r"+[redacted]\1"),
    # Email addresses: the domain stays, for support.
    (re.compile(r"\b[A-Za-z0-9._%+-]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b"), r"[redacted]@\1"),
]


def redact(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class TraceIdFilter(logging.Filter):
    """Adds ` trace_id=…` to lines logged inside a span (nothing outside one,
    or with tracing off), so a log line leads to its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.trace = f" trace_id={span.trace_id:032x}" if span.is_valid else ""
        return True


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(TraceIdFilter())
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(name)s %(levelname)s%(trace)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler])
