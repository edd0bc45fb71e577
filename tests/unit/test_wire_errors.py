"""The table from requests/urllib3 exceptions to ours places every class both libraries define."""

from __future__ import annotations

import inspect

import pytest
import requests.exceptions as rex
import urllib3.exceptions as uex

from scoutframe.api.wire_errors import TABLE, WIRE_EXCEPTIONS, Failure, place, translate
from scoutframe.errors import ConfigurationError, ScoutError, TransportError

AT = Failure(
    host="api.example",
    where="GET /api/x",
    elapsed=1.5,
    charging=False,
    timeout=(5.0, 60.0),
    secrets=("s3cr3t-value",),
)


def _library_exceptions() -> list[type[BaseException]]:
    found = []
    for module in (rex, uex):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseException)
                and not issubclass(cls, Warning)
                and cls.__module__ == module.__name__
            ):
                found.append(cls)
    return sorted(set(found), key=lambda c: (c.__module__, c.__name__))


def test_every_library_exception_is_caught_and_placed_by_a_specific_row() -> None:
    classes = _library_exceptions()
    assert len(classes) >= 45  # both libraries, not an empty walk
    unplaced = []
    for cls in classes:
        assert issubclass(cls, WIRE_EXCEPTIONS), f"{cls} escapes the transport's except"
        row = place(cls)
        if row is None or (row.catch_all and cls not in row.classes):
            unplaced.append(f"{cls.__module__}.{cls.__name__}")
    assert unplaced == [], "add these to scoutframe.api.wire_errors.TABLE: " + ", ".join(unplaced)


def test_rows_are_most_specific_first() -> None:
    """No row is shadowed by an earlier one that places all of its classes."""
    for index, row in enumerate(TABLE):
        for cls in row.classes:
            earlier = place(cls)
            assert earlier is row or earlier is None or TABLE.index(earlier) >= index, (
                f"{cls.__name__} of row {index} is placed by row {TABLE.index(earlier)}"
            )


def _instance(cls: type[BaseException]) -> BaseException:
    if cls is rex.JSONDecodeError:
        return rex.JSONDecodeError("Expecting value", "<html>", 0)
    if cls is uex.InvalidChunkLength:
        import io

        from urllib3.response import HTTPResponse

        return uex.InvalidChunkLength(HTTPResponse(io.BytesIO(b"")), b"zz")
    for args in ((), ("boom",), (None, "boom"), (None, "/x", "boom"), ("boom", None)):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls}")


@pytest.mark.parametrize("cls", _library_exceptions(), ids=lambda c: c.__name__)
def test_translation_is_a_scout_error_without_secrets(cls: type[BaseException]) -> None:
    error = translate(_instance(cls), AT)
    assert isinstance(error, ScoutError)
    assert "s3cr3t-value" not in str(error)
    assert "GET /api/x" in str(error) or "api.example" in str(error)


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (rex.ReadTimeout("slow"), TransportError, "read timeout (60 s) (after retries)"),
        (rex.ConnectTimeout("slow"), TransportError, "within 5 s"),
        (
            rex.ConnectionError(
                uex.MaxRetryError(
                    None,
                    "/x",  # type: ignore[arg-type]
                    uex.NewConnectionError(None, "refused"),
                )
            ),  # type: ignore[arg-type]
            TransportError,
            "Could not connect to api.example",
        ),
        (
            rex.ConnectionError(uex.ProtocolError("Connection broken: reset")),
            TransportError,
            "broke during GET /api/x after 1.5 s",
        ),
        (rex.SSLError("bad cert"), TransportError, "TLS"),
        (rex.ProxyError("nope"), TransportError, "HTTPS_PROXY"),
        (rex.InvalidURL("x"), ConfigurationError, "check base_url"),
        (rex.TooManyRedirects("loop"), TransportError, "redirected too many times"),
    ],
)
def test_messages_say_what_happened_and_what_to_do(
    exc: BaseException, kind: type[ScoutError], words: str
) -> None:
    error = translate(exc, AT)
    assert type(error) is kind
    assert words in str(error)


def test_charging_calls_do_not_claim_retries() -> None:
    charging = Failure(
        host="h", where="GET /api/download-csv", elapsed=0.1, charging=True, timeout=(5.0, 60.0)
    )
    assert "after retries" not in str(translate(rex.ReadTimeout("slow"), charging))
