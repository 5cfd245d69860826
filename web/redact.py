"""Keep the WebSocket token out of the logs.

At `--log-level debug` uvicorn's loggers write every request line
(`"WebSocket /ws?format=json&token=..." [accepted]`), and the websockets
protocol it drives logs the handshake's headers, `Authorization: Bearer ...`
included. `TokenRedactor` rewrites such records before any handler sees
them: the message is formatted with its arguments, the secret parts are
replaced by `***`, and the record then carries the redacted text alone."""

from __future__ import annotations

import logging
import re

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
REDACTED = "***"
_QUERY_TOKEN = re.compile(r"(?i)([?&;]token=)[^&;\s\"'#]*")
_BEARER = re.compile(r"(?i)(\bbearer\s+)[^\s\"',;]+")
_HINTS = ("token=", "bearer")


def redact(text: str, secret: str | None = None) -> str:
    """`text` with `?token=` values, bearer credentials and `secret` masked."""
    if secret:
        text = text.replace(secret, REDACTED)
    lowered = text.lower()
    if any(hint in lowered for hint in _HINTS):
        text = _QUERY_TOKEN.sub(r"\g<1>" + REDACTED, text)
        text = _BEARER.sub(r"\g<1>" + REDACTED, text)
    return text


class TokenRedactor(logging.Filter):
    """A logger filter that never drops a record, only masks secrets in it."""

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # Mismatched arguments: logging would print them raw in its error
            # report, so keep the (redacted) template only.
            record.msg, record.args = redact(str(record.msg), self._secret), None
            return True
        clean = redact(message, self._secret)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install(secret: str | None = None) -> TokenRedactor:
    """Attach one redactor to each of uvicorn's loggers (a logger's filters
    see only records logged on it, not those of its children)."""
    redactor = TokenRedactor(secret)
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if redactor not in logger.filters:
            logger.addFilter(redactor)
    return redactor
