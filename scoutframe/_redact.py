"""The one redaction helper: every repr, log line and error message goes through it.

It scrubs, wherever they appear in a string: ``Authorization`` header values, ``Bearer``/``Token``
credentials, API keys (64 hex characters), JWTs, passwords in ``key=value`` or JSON form, and
the values of credential-like query parameters (``signature=``, ``token=``, ``api_key=``, ...).
Callers may also pass the exact secrets they hold, which are removed whatever their shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["MASK", "redact", "redact_headers", "redact_url"]

MASK = "***"

# Query parameters whose values are credentials (pre-signed URLs, tokens, keys).
_SECRET_PARAMS = frozenset(
    {
        "signature",
        "sig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "token",
        "access_token",
        "refresh_token",
        "api_key",
        "apikey",
        "key",
        "password",
        "passwd",
        "secret",
        "access",
        "refresh",
    }
)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Authorization: Bearer abc" / "'Authorization': 'Token abc'": the scheme is kept.
    (
        re.compile(
            r"""(?i)((?:proxy-)?authorization["']?\s*[:=]\s*["']?"""
            r"""(?:(?:bearer|token|basic|jwt)\s+)?)[^\s"',}]+"""
        ),
        rf"\1{MASK}",
    ),
    # Quoted secrets in JSON or reprs, up to the closing quote (passwords may hold spaces).
    (
        re.compile(
            r"""(?i)(["'](?:password|passwd|api_key|apikey|secret|access|refresh|key)["']"""
            r"""\s*:\s*)("[^"]*"|'[^']*')"""
        ),
        rf"\1'{MASK}'",
    ),
    (re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),
    # JWTs: three base64url parts, the first one a JSON header ("eyJ").
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"), MASK),
    # API keys: 64 hex characters (also longer hex runs).
    (re.compile(r"\b[0-9a-fA-F]{40,}\b"), MASK),
    # password=..., "password": "...", api_key: ..., refresh=... in text, JSON or query strings.
    (
        re.compile(
            r"""(?i)(["']?\b(?:password|passwd|api[_-]?key|secret|access|refresh|"""
            r"""access_token|refresh_token|signature|x-amz-signature|sig|token)\b["']?"""
            r"""\s*[:=]\s*["']?)(?!\.\.\.|\*\*\*|<)([^"'&\s,;}]+)"""
        ),
        rf"\1{MASK}",
    ),
)


def redact(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Return ``str(text)`` with every credential replaced by ``***``.

    Parameters
    ----------
    text
        Anything; it is converted with ``str``.
    secrets
        Exact values to remove as well (an API key, a password), whatever they look like.

    Returns
    -------
    str
        The scrubbed text.
    """
    out = str(text)
    # Longest first, so a secret containing another is removed whole.
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        out = out.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        out = pattern.sub(replacement, out)
    return out


def redact_url(url: str) -> str:
    """Return ``url`` with credential query values and any ``user:password@`` removed."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs], safe="*"
        )
    return redact(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return a copy of ``headers`` with credential headers masked and the rest scrubbed."""
    return {k: (MASK if k.lower() in _SECRET_HEADERS else redact(v)) for k, v in headers.items()}
