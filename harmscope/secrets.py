"""Secret masking: API keys and secret headers never reach disk, logs or error messages.

Adapters :func:`register` every secret they hold (API keys, secret header values) when they
are built. :func:`mask` replaces each registered secret in a text, in every form a server or a
library may echo it back: raw, JSON-escaped (``\\/``, ``\\uXXXX``), URL-encoded, HTML-escaped,
and cut short (a prefix or suffix of at least :data:`MIN_PART` characters, as left by a server
or a log line that truncates its message). The store, the manifest, run directories and the
CLI's error printer all pass text through :func:`mask`.
"""

from __future__ import annotations

import html
import json
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4  # shorter values are not masked (they would mask ordinary words)
MIN_PART = 6  # the shortest prefix/suffix of a secret that is masked on its own

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def check_secret(value: str, name: str) -> str:
    """``value`` if it is printable ASCII; else a one-line error naming ``name``, never the value."""
    from harmscope.errors import HarmscopeError

    bad = [c for c in value if not (33 <= ord(c) <= 126)]
    if bad:
        kind = "control characters" if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in bad) else (
            "spaces" if all(c == " " for c in bad) else "non-ASCII characters")
        raise HarmscopeError(f"{name} contains {kind} (a stray newline or paste?): fix it; its value is not shown")
    return value


def variants(secret: str) -> set[str]:
    """The forms in which ``secret`` may be echoed back."""
    out = {secret}
    j = json.dumps(secret)[1:-1]
    out |= {j, j.replace("/", "\\/"), json.dumps(secret, ensure_ascii=True)[1:-1]}
    out |= {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret), html.escape(secret)}
    out.add("".join(f"\\u{ord(c):04x}" for c in secret))
    return {v for v in out if len(v) >= MIN_SECRET}


def _alternation(v: str) -> str:
    """A regex for ``v`` or any prefix/suffix of it of at least MIN_PART characters."""
    if len(v) <= MIN_PART:
        return re.escape(v)
    head = re.escape(v[:MIN_PART])
    tail = ""
    for c in reversed(v[MIN_PART:]):
        tail = f"(?:{re.escape(c)}{tail})?"
    suffixes = "|".join(re.escape(v[i:]) for i in range(1, len(v) - MIN_PART + 1))
    return f"{head}{tail}|{suffixes}" if suffixes else f"{head}{tail}"


def register(secret: str | None) -> None:
    """Remember ``secret`` so that :func:`mask` hides it from now on (process-wide)."""
    global _pattern
    if not secret or len(secret) < MIN_SECRET:
        return
    with _lock:
        if secret in _secrets:
            return
        _secrets.add(secret)
        forms = sorted({v for s in _secrets for v in variants(s)}, key=len, reverse=True)
        _pattern = re.compile("|".join(_alternation(v) for v in forms))


def forget_all() -> None:
    """Forget every registered secret (tests)."""
    global _pattern
    with _lock:
        _secrets.clear()
        _pattern = None


def mask(text: str) -> str:
    """``text`` with every registered secret (in any of its forms) replaced by ``***``."""
    pat = _pattern
    if pat is None or not text:
        return text
    return pat.sub(MASK, text)


def has_secrets() -> bool:
    return _pattern is not None
