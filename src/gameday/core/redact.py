"""Secrets stay out of everything a run writes: journal, reports, log files, the console.

Three rules, applied to every string the harness writes (events on the bus, journal
records, report files, the log files of the processes it runs):

- **Known values.** Credentials the harness handles are remembered when it meets them
  (a kubeconfig's token, password or client key; a server's ``HF_TOKEN``-style
  variable or ``--api-key`` argument; the same variables in the harness's own
  environment, which the processes it starts inherit) and replaced wherever they
  appear, also inside a server's own log lines (vLLM logs its non-default arguments,
  ``--api-key`` among them).
- **Names.** In an environment or header map, the value of a secret-looking name;
  in an argument list, the value after a secret-looking flag.
- **Shapes.** ``Bearer <token>``, ``--api-key=<value>`` inside a text,
  ``scheme://user:password@`` in a URL.

Each is replaced by :data:`MASK`. The module imports nothing of the project: the
journal, the event bus and the report writers all stand on it.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "MaskingFormatter",
    "is_secret_name",
    "redact",
    "redact_known",
    "redact_text",
    "remember_secret",
    "remember_secrets_in",
    "remember_secrets_of",
]

MASK = "[redacted]"

# Words that make a variable, header or flag name a secret's: HF_TOKEN, OPENAI_API_KEY,
# AWS_SECRET_ACCESS_KEY, --api-key, --hf-token, Authorization, client-key-data.
_SECRET_WORDS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "apikey",
        "credential",
        "credentials",
        "authorization",
        "cookie",
        "auth",
    }
)
_SECRET_PAIRS = frozenset(
    {("api", "key"), ("access", "key"), ("private", "key"), ("client", "key")}
)
_COUNTING = frozenset({"per", "max", "min", "num", "each"})
# named for what they hold, not ending in it: a kubeconfig's client key
_SECRET_FIELDS = frozenset({"client-key-data"})
# a marker the harness sets in its processes' environment to find them again, not a secret
_NOT_SECRETS = frozenset({"gameday_process_token"})
_SHORTEST_SECRET = 6  # shorter values would mask ordinary words and numbers

_ENV_KEYS = frozenset({"env", "environment", "headers", "extra_env"})
_ARGV_KEYS = frozenset({"command", "args", "argv", "cmdline", "engine_args", "extra_args"})

_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{4,}")
_HEADER_LINE = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key|cookie)(\s*[:=]\s*)(?!bearer\b)(\S+)"
)
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^/\s@]+@")
_FLAG_IN_TEXT = re.compile(r"(?<![\w-])(--?[A-Za-z0-9][A-Za-z0-9_.-]*)(=|[ \t]+)([^\s\"',;)\]}]+)")
# what a flag's value in a dict repr looks like: 'api_key': ['sk-...'] or 'hf_token': 'hf_...'
_REPR_ITEM = re.compile(r"""(['"])([A-Za-z0-9_.-]+)\1:\s*(\[\s*)?(['"])([^'"]+)\4""")

_known: set[str] = set()
_lock = threading.Lock()


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def is_secret_name(name: str) -> bool:
    """Whether a variable, header, field or flag name names a secret: it ends in a
    secret's word (``HF_TOKEN``, ``--api-key``, ``AWS_SECRET_ACCESS_KEY``), so that
    ``SSH_AUTH_SOCK`` or ``token-file`` (a socket, a path) are not."""
    if name.lower() in _NOT_SECRETS:
        return False
    words = _words(name)
    if not words:
        return False
    if name.lower().lstrip("-") in _SECRET_FIELDS:
        return True
    if len(words) > 1 and words[-2] in _COUNTING:
        return False  # --decode-ms-per-token, max_token: an amount, not a credential
    if words[-1] in _SECRET_WORDS:
        return True
    return len(words) > 1 and (words[-2], words[-1]) in _SECRET_PAIRS


def remember_secret(value: str | None) -> None:
    """From now on, mask ``value`` wherever it appears."""
    if value and len(value) >= _SHORTEST_SECRET:
        with _lock:
            _known.add(value)


def remember_secrets_of(
    *, env: Mapping[str, str] | None = None, argv: Iterable[str] | None = None
) -> None:
    """Remember the values of the secret-looking variables of ``env`` and the values
    of the secret-looking flags of ``argv``."""
    for name, value in (env or {}).items():
        if is_secret_name(name):
            remember_secret(value)
    for value in _flag_values(list(argv or [])):
        remember_secret(value)


def remember_secrets_in(value: Any, *, key: str | None = None) -> None:
    """Remember the secrets a spec holds (a scenario's, as a dict): the secret-looking
    variables of its environment and header maps, the secret flags of its argument lists."""
    lowered = key.lower() if key is not None else None
    if isinstance(value, Mapping):
        if lowered in _ENV_KEYS:
            remember_secrets_of(env={str(k): v for k, v in value.items() if isinstance(v, str)})
        for k, v in value.items():
            if is_secret_name(str(k)) and isinstance(v, str):
                remember_secret(v)  # a field such as api_key: or token: holds one itself
            remember_secrets_in(v, key=key if lowered in _ARGV_KEYS else str(k))
    elif isinstance(value, (list, tuple)):
        if lowered in _ARGV_KEYS:
            remember_secrets_of(argv=[v for v in value if isinstance(v, str)])
        for item in value:
            remember_secrets_in(item)


def _flag_values(argv: list[str]) -> Iterable[str]:
    for index, arg in enumerate(argv):
        if not arg.startswith("-"):
            continue
        flag, equals, inline = arg.partition("=")
        if not is_secret_name(flag):
            continue
        if equals:
            yield inline
        elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
            yield argv[index + 1]


def redact_known(text: str) -> str:
    """``text`` with every known secret masked, and nothing else changed: safe on a
    rendered document (JSON, HTML, XML), where the shape rules could cut a quote."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)  # a longer secret before its prefix
    for value in known:
        if value in text:
            text = text.replace(value, MASK)
    return text


def redact_text(text: str) -> str:
    """``text`` (a log line, a message) with every known secret and every secret-shaped
    fragment masked."""
    if not text:
        return text
    text = redact_known(text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _HEADER_LINE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _FLAG_IN_TEXT.sub(_masked_flag, text)
    return _REPR_ITEM.sub(_masked_repr_item, text)


class MaskingFormatter(logging.Formatter):
    """A log record's line (its traceback included) with :func:`redact_text` applied: the
    harness's own warnings name URLs, commands and errors that may carry a secret."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def _masked_flag(match: re.Match[str]) -> str:
    flag, separator, value = match.groups()
    masked_already = match.string.startswith(MASK, match.start(3))
    if not is_secret_name(flag) or masked_already or value.startswith("-"):
        return match.group(0)
    return f"{flag}{separator}{MASK}"


def _masked_repr_item(match: re.Match[str]) -> str:
    quote, name, bracket, value_quote, value = match.groups()
    if not is_secret_name(name) or value == MASK:
        return match.group(0)
    return f"{quote}{name}{quote}: {bracket or ''}{value_quote}{MASK}{value_quote}"


def _redact_argv(argv: list[Any]) -> list[Any]:
    masked = list(argv)
    for index, arg in enumerate(masked):
        if not isinstance(arg, str) or not arg.startswith("-"):
            continue
        flag, equals, _ = arg.partition("=")
        if not is_secret_name(flag):
            continue
        if equals:
            masked[index] = f"{flag}={MASK}"
        elif (
            index + 1 < len(masked)
            and isinstance(masked[index + 1], str)
            and not masked[index + 1].startswith("-")
        ):
            masked[index + 1] = MASK
    return [redact(a) for a in masked]


def redact(value: Any, *, key: str | None = None) -> Any:
    """A copy of ``value`` (strings, lists, tuples, dicts of them) with secrets masked;
    ``key`` is the name the value is filed under, which says how to read it."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        as_env = key is not None and key.lower() in _ENV_KEYS
        # the lists of a map of argument lists (engine_args: {vllm: [...]}) are arguments too
        as_argv = key is not None and key.lower() in _ARGV_KEYS
        return {
            k: (
                MASK
                if as_env and is_secret_name(str(k)) and v
                else redact(v, key=key if as_argv else str(k))
            )
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        items = (
            _redact_argv(list(value))
            if key is not None and key.lower() in _ARGV_KEYS
            else [redact(v) for v in value]
        )
        return tuple(items) if isinstance(value, tuple) else items
    return value
