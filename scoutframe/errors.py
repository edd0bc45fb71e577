"""Every error scoutframe raises, under one root, :class:`ScoutError`.

::

    ScoutError
    ├── ConfigurationError            bad/missing configuration, insecure http refused
    ├── TransportError                connection failed / timed out (after retries)
    ├── APIError(status, detail, body, request_id)
    │   ├── BadRequestError (400)     .field_errors: dict[str, list[str]]
    │   ├── AuthenticationError (401)
    │   ├── PermissionDeniedError (403)
    │   │   ├── InsufficientCreditsError  .required_credits, .available_credits
    │   │   └── EdgeBlockedError          403 with an HTML body (production edge)
    │   ├── NotFoundError (404)
    │   ├── RateLimitError (429)      .retry_after
    │   ├── ServerError (5xx)
    │   └── AnswerTooLargeError       an answer or download past its bound; .limit
    ├── ExportError                   .job (resumable handle)
    │   ├── ExportFailedError         the server's message
    │   ├── ExportTimeoutError        deadline passed; the job is still resumable
    │   ├── DownloadExpiredError      signed URL expired and no fresh one could be had
    │   └── ExportParseError          the paid file could not be read; .path keeps it
    ├── BudgetError                   refused before spending (max_credits)
    │   └── ConsentError              a read would spend credits and no budget was given
    ├── FilterError                   unknown category / location / country name
    ├── ArgumentError                 an argument of the wrong type or out of range
    ├── CacheError                    the Parquet cache cannot serve or store an entry
    │   └── CacheMissError            cache="only" and no entry for this search
    └── LocalFileError (OSError)      a file cannot be written where it should; .path
        └── DiskFullError             no space left; .needed, .free (bytes)

Every message says what happened and what to do next, and is passed through
:func:`scoutframe._redact.redact`, so no credential ever ends up in a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ._redact import redact

if TYPE_CHECKING:
    from pathlib import Path

    from .api.jobs import ExportJob
    from .models import ReadPlan

__all__ = [
    "APIError",
    "AnswerTooLargeError",
    "ArgumentError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetError",
    "CacheError",
    "CacheMissError",
    "ConfigurationError",
    "ConsentError",
    "DiskFullError",
    "DownloadExpiredError",
    "EdgeBlockedError",
    "ExportError",
    "ExportFailedError",
    "ExportParseError",
    "ExportTimeoutError",
    "FilterError",
    "InsufficientCreditsError",
    "LocalFileError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ScoutError",
    "ServerError",
    "TransportError",
    "error_for_status",
]


class ScoutError(Exception):
    """Root of every scoutframe error."""

    def __init__(self, message: str = "") -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        """The (redacted) message."""
        return str(self.args[0]) if self.args else ""


class ConfigurationError(ScoutError):
    """The client is missing a setting, or a setting is unsafe or malformed."""


class TransportError(ScoutError):
    """The server could not be reached or did not answer in time, after the retries."""


class BudgetError(ScoutError):
    """An operation was refused before spending anything, because it exceeds ``max_credits``."""


class ConsentError(BudgetError):
    """A read would spend credits, and the caller gave no budget: nothing was spent.

    :attr:`plan` is the read's plan (rows, credits, balance). Pass ``max_credits=`` (or set a
    default budget: ``Client(max_credits=...)``, ``SCOUTFRAME_MAX_CREDITS``), ask for
    ``method="export"``, read by pages for free (``method="pages"``), or narrow the filters.
    """

    def __init__(self, message: str, *, plan: ReadPlan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


class FilterError(ScoutError, ValueError):
    """A filter value is of the wrong type or names no known country, category or location."""


class ArgumentError(ScoutError, TypeError, ValueError):
    """An argument has the wrong type or is out of range; the message shows the fix.

    It is also a :class:`TypeError` and a :class:`ValueError`, so code written against the
    built-in exceptions keeps catching it.
    """


class CacheError(ScoutError):
    """The Parquet cache cannot serve or store an entry; the message names it and the fix.

    A damaged entry, or a cache directory that is a file or not writable.
    """


class CacheMissError(CacheError):
    """``cache="only"`` and this search has no entry: nothing was read from the network."""


class APIError(ScoutError):
    """The API answered with an error status.

    Parameters
    ----------
    status
        The HTTP status code.
    detail
        The server's message (``detail`` of the JSON body), or a summary of the body.
    body
        The decoded JSON body (or the text when it was not JSON), or ``None``.
    request_id
        The server's request id, when it sent one.
    hint
        What to do about it; appended to the message.
    """

    default_hint = ""

    def __init__(
        self,
        status: int,
        detail: str,
        body: Any = None,
        request_id: str | None = None,
        *,
        hint: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.status = int(status)
        self.detail = redact(detail)
        self.body = body
        self.request_id = request_id
        self.method = method
        self.url = url
        where = f" ({method} {url})" if method and url else ""
        text = f"{self.status} {self.detail}{where}"
        tip = self.default_hint if hint is None else hint
        self.hint = tip
        if tip:
            # The server's detail often ends a sentence already ("... has 5.").
            text = f"{text} {tip}" if text.endswith((".", "!", "?")) else f"{text}. {tip}"
        if request_id:
            text = f"{text} [request id {request_id}]"
        super().__init__(text)


class BadRequestError(APIError):
    """400: the request was malformed; :attr:`field_errors` maps each field to its messages."""

    default_hint = "Fix the values named above and try again"

    @property
    def field_errors(self) -> dict[str, list[str]]:
        """``{"field": ["message", ...]}`` from a DRF-style error body."""
        return _field_errors(self.body)


class AuthenticationError(APIError):
    """401: the credential is missing, wrong, expired or revoked."""

    default_hint = (
        "Check the API key (SPHERESCOUT_API_KEY or Client(api_key=...)) or the username and "
        "password; create a new key in your SphereScout account if this one was revoked"
    )


class PermissionDeniedError(APIError):
    """403: the account may not do this."""

    default_hint = "Your account or plan does not allow this request"


class InsufficientCreditsError(PermissionDeniedError):
    """403: not enough credits; nothing was charged."""

    default_hint = "Nothing was charged. Buy credits, or narrow the filters to fewer contacts"

    @property
    def required_credits(self) -> int:
        """Credits the operation needs."""
        return _int_field(self.body, "required_credits")

    @property
    def available_credits(self) -> int:
        """Credits the account has."""
        return _int_field(self.body, "available_credits")

    @classmethod
    def from_counts(cls, required: int, available: int) -> InsufficientCreditsError:
        """Build the error without a server answer (checked before spending)."""
        body = {
            "detail": f"This needs {required} credits but the account has {available}.",
            "validation_code": "insufficient_credits",
            "required_credits": int(required),
            "available_credits": int(available),
        }
        return cls(403, str(body["detail"]), body, None)


class EdgeBlockedError(PermissionDeniedError):
    """403 with an HTML page: a proxy or CDN in front of the API blocked the request."""

    default_hint = (
        "An edge proxy in front of the API answered with an HTML page: it is blocking this "
        "User-Agent or your network (VPN, proxy, cloud address). Keep the default scoutframe "
        "User-Agent, try another network, or contact SphereScout support"
    )


class NotFoundError(APIError):
    """404: no such object (or page, or id of another account)."""

    default_hint = "Check the id: it may be mistyped, deleted, or belong to another account"
    page_hint = "Check the page number against num_pages (pages start at 1)"


class RateLimitError(APIError):
    """429: too many requests; :attr:`retry_after` says how long to wait (seconds)."""

    def __init__(
        self,
        status: int,
        detail: str,
        body: Any = None,
        request_id: str | None = None,
        *,
        retry_after: float | None = None,
        hint: str | None = None,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        if hint is None:
            wait = f"in {retry_after:g} s" if retry_after is not None else "later"
            hint = f"Rate limit reached; try again {wait}, or make fewer requests a second"
        super().__init__(status, detail, body, request_id, hint=hint, method=method, url=url)


class ServerError(APIError):
    """5xx: the server failed (after the retries, for requests that may be retried)."""

    default_hint = "The SphereScout server failed; try again in a minute"


class AnswerTooLargeError(APIError):
    """An answer (or a download) went past the bound scoutframe sets it; not read further.

    :attr:`limit` is the bound in bytes (see :mod:`scoutframe.api.bodies`).
    """

    def __init__(self, status: int, detail: str, *, limit: int, hint: str | None = None) -> None:
        super().__init__(status, detail, hint=hint)
        self.limit = limit


class LocalFileError(ScoutError, OSError):
    """A file scoutframe writes could not be written at :attr:`path`; nothing half-written stays.

    Also an :class:`OSError` (its :attr:`errno` is the system's), so code catching
    ``OSError`` keeps working. The message names the path and what to do.
    """

    def __init__(self, message: str, *, path: Path | str, errno: int | None = None) -> None:
        ScoutError.__init__(self, message)
        self.path = path
        self.errno = errno
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message


class DiskFullError(LocalFileError):
    """No space left where a file is written: :attr:`needed` and :attr:`free` in bytes.

    ``needed`` is ``None`` when it is not known in advance (a download without a length).
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | str,
        needed: int | None,
        free: int | None,
        errno: int | None = None,
    ) -> None:
        super().__init__(message, path=path, errno=errno)
        self.needed = needed
        self.free = free


class ExportError(ScoutError):
    """An export failed or could not be completed; :attr:`job` resumes it when not ``None``.

    :attr:`charged` says what is known of the money: ``True`` charged, ``False`` surely not,
    ``None`` unknown (check the balance and the history before starting again).
    """

    def __init__(
        self, message: str, *, job: ExportJob | None = None, charged: bool | None = None
    ) -> None:
        super().__init__(message)
        self.job = job
        self.charged = charged


class ExportFailedError(ExportError):
    """The server reports the export as failed (its credits are refunded)."""


class ExportTimeoutError(ExportError):
    """The export was not ready before the deadline; the job can still be resumed."""


class DownloadExpiredError(ExportError):
    """The signed download URL expired and no fresh one could be obtained."""


class ExportParseError(ExportError):
    """A paid export file could not be read; it is kept at :attr:`path` (nothing is lost).

    ``scoutframe.read_export_csv(exc.path)`` reads it again; the same ``read_spherescout``
    call also finds it again without paying.
    """

    def __init__(self, message: str, *, job: ExportJob | None = None, path: Path) -> None:
        super().__init__(message, job=job)
        self.path = path


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_for_status(
    status: int,
    body: Any,
    *,
    content_type: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
    method: str | None = None,
    url: str | None = None,
) -> APIError:
    """Map an error answer (status, decoded body, content type) to the right :class:`APIError`.

    Parameters
    ----------
    status
        HTTP status (>= 400).
    body
        The JSON-decoded body, or the body text when it was not JSON, or ``None``.
    content_type
        The ``Content-Type`` header (an HTML 403 means an edge block).
    request_id, retry_after, method, url
        Carried into the error (``url`` should already be redacted).

    Returns
    -------
    APIError
        An instance of the subclass for this status.
    """
    detail = _detail(status, body)
    common: dict[str, Any] = {"method": method, "url": url}
    if status == 403:
        if _looks_html(body, content_type):
            return EdgeBlockedError(
                403, "Forbidden (HTML page from an edge proxy)", body, request_id, **common
            )
        if isinstance(body, Mapping) and (
            body.get("validation_code") == "insufficient_credits" or "required_credits" in body
        ):
            return InsufficientCreditsError(403, detail, body, request_id, **common)
        return PermissionDeniedError(403, detail, body, request_id, **common)
    if status == 429:
        return RateLimitError(429, detail, body, request_id, retry_after=retry_after, **common)
    if status >= 500:
        return ServerError(status, detail, body, request_id, **common)
    cls = _BY_STATUS.get(status, APIError)
    if cls is BadRequestError and _field_errors(body):
        fields = "; ".join(f"{k}: {' '.join(v)}" for k, v in _field_errors(body).items())
        return BadRequestError(status, f"invalid request: {fields}", body, request_id, **common)
    hint = None if cls is not APIError else ""
    if cls is NotFoundError and url and _is_page_request(url):
        hint = NotFoundError.page_hint
    return cls(status, detail, body, request_id, hint=hint, **common)


def _is_page_request(url: str) -> bool:
    """Whether the request asked for a search page (``paginate``/``page`` in the query)."""
    query = urlsplit(url).query
    return any(key in ("page", "paginate") for key, _ in parse_qsl(query))


def _detail(status: int, body: Any) -> str:
    if isinstance(body, Mapping):
        detail = body.get("detail") or body.get("message") or body.get("error")
        if isinstance(detail, str) and detail:
            return detail
        fields = _field_errors(body)
        if fields:
            return "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
    if isinstance(body, str) and body.strip() and not _looks_html(body, ""):
        return body.strip()[:200]
    return _REASONS.get(status, "Error")


def _field_errors(body: Any) -> dict[str, list[str]]:
    if not isinstance(body, Mapping):
        return {}
    out: dict[str, list[str]] = {}
    for key, value in body.items():
        if key in ("detail", "code", "validation_code") or not isinstance(key, str):
            continue
        if isinstance(value, str):
            out[key] = [value]
        elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            out[key] = list(value)
    return out


def _int_field(body: Any, key: str) -> int:
    if isinstance(body, Mapping):
        try:
            return int(body.get(key) or 0)
        except (TypeError, ValueError):
            return 0
    return 0


def _looks_html(body: Any, content_type: str) -> bool:
    if "html" in content_type.lower():
        return True
    return isinstance(body, str) and body.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
