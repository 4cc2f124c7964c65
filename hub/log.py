"""Structured logs: JSON lines for services (and whenever stderr is not a terminal), readable on a tty."""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

from hub.domain.ids import mask_resident_id

# A resident ID number (GB 11643): region, birth date, sequence, check character. Personal data: logs at INFO
# and above show it masked as the courts' public portal does; an organisation's credit code is public.
_RESIDENT_ID = re.compile(
    r"(?<![0-9A-Za-z])\d{6}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)


def mask_ids(text: str) -> str:
    return _RESIDENT_ID.sub(lambda m: mask_resident_id(m.group()), text)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_ids(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    return value


def mask_personal_data(_logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Only DEBUG may show ID numbers in full."""
    if method == "debug":
        return event_dict
    return {k: _masked(v) for k, v in event_dict.items()}


# Fields on every line of this process, from any thread (contextvars do not reach the engine's threads).
_PROCESS_FIELDS: dict[str, Any] = {}


def bind_process(**fields: Any) -> None:
    """Mark every later line of this process, e.g. a worker's index, so that interleaved logs can be told apart."""
    _PROCESS_FIELDS.update(fields)


def _process_fields(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in _PROCESS_FIELDS.items():
        event_dict.setdefault(key, value)
    return event_dict


def configure(level: str = "INFO", fmt: str = "auto") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if as_json else structlog.dev.ConsoleRenderer()
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    # librdkafka retries transient broker states itself; only what it gives up on is worth a line.
    logging.getLogger("hub.librdkafka").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _process_fields,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            mask_personal_data,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write per line (print makes two): the workers of a service share its stderr, and lines must not mix.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
