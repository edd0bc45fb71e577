"""Error mapping from status and body, and the shape of the error tree."""

from __future__ import annotations

import builtins
import inspect

import pytest

from scoutframe import errors
from scoutframe.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    EdgeBlockedError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ScoutError,
    ServerError,
    error_for_status,
)


def test_every_error_has_the_one_root_and_no_builtin_name():
    classes = [
        c
        for _, c in inspect.getmembers(errors, inspect.isclass)
        if issubclass(c, Exception) and c.__module__ == errors.__name__
    ]
    assert len(classes) >= 18
    for cls in classes:
        assert issubclass(cls, ScoutError)
        assert not hasattr(builtins, cls.__name__)
    assert sorted(errors.__all__) == errors.__all__


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, {"detail": "bad"}, BadRequestError),
        (401, {"detail": "Invalid API key."}, AuthenticationError),
        (403, {"detail": "Plan does not allow it."}, PermissionDeniedError),
        (404, {"detail": "Not found."}, NotFoundError),
        (405, {"detail": "Method not allowed."}, APIError),
        (429, {"detail": "slow down"}, RateLimitError),
        (500, None, ServerError),
        (502, "Bad gateway", ServerError),
        (503, {"detail": "down"}, ServerError),
    ],
)
def test_status_maps_to_class(status, body, cls):
    error = error_for_status(status, body)
    assert type(error) is cls
    assert error.status == status
    assert str(status) in str(error)


def test_field_errors_are_listed():
    body = {"countries": ["Unknown country code 'XX'."], "category": ["Unknown id 1."]}
    error = error_for_status(400, body)
    assert isinstance(error, BadRequestError)
    assert error.field_errors == body
    assert "countries: Unknown country code 'XX'." in str(error)
    assert "Fix the values" in str(error)


def test_insufficient_credits_carries_the_counts():
    body = {
        "detail": "Not enough credits.",
        "validation_code": "insufficient_credits",
        "required_credits": 1842,
        "available_credits": 120,
    }
    error = error_for_status(403, body, request_id="req-1")
    assert isinstance(error, InsufficientCreditsError)
    assert (error.required_credits, error.available_credits) == (1842, 120)
    assert "Nothing was charged" in str(error)
    assert "req-1" in str(error)
    built = InsufficientCreditsError.from_counts(10, 3)
    assert (built.required_credits, built.available_credits) == (10, 3)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<!DOCTYPE html><html>blocked</html>", "text/html"),
        ("<html><body>x", ""),
        (None, "text/html; charset=utf-8"),
    ],
)
def test_html_403_is_an_edge_block(body, content_type):
    error = error_for_status(403, body, content_type=content_type)
    assert isinstance(error, EdgeBlockedError)
    assert isinstance(error, PermissionDeniedError)
    assert "User-Agent" in str(error)
    assert "<html" not in str(error).lower()


def test_rate_limit_carries_retry_after():
    error = error_for_status(429, {"detail": "Request was throttled."}, retry_after=7.0)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 7.0
    assert "try again in 7 s" in str(error)
    assert error_for_status(429, None).retry_after is None


def test_messages_are_redacted():
    key = "f" * 64
    error = error_for_status(401, {"detail": f"Invalid key {key}"}, url="/api/x?api_key=secret123")
    assert key not in str(error)
    assert key not in error.detail
    assert "secret123" not in str(error)


def test_detail_falls_back_to_reason_and_text():
    assert "Service Unavailable" in str(error_for_status(503, None))
    assert "plain text failure" in str(error_for_status(500, "plain text failure"))
    assert error_for_status(404, {"detail": "Invalid page."}).detail == "Invalid page."


@pytest.mark.parametrize(
    "error",
    [
        InsufficientCreditsError.from_counts(10, 5),
        error_for_status(403, {"detail": "Not enough credits.", "required_credits": 9}),
        error_for_status(401, {"detail": "Invalid token."}),
        error_for_status(400, {"detail": "Bad filter!"}),
    ],
)
def test_a_detail_ending_a_sentence_gets_no_second_full_stop(error):
    text = str(error)
    assert f"{error.detail}." not in text
    assert f"{error.detail} {type(error).default_hint}" in text


def test_hint_after_a_detail_without_full_stop_still_gets_one():
    text = str(error_for_status(404, {"detail": "No such key"}))
    assert "No such key. Check the id" in text


@pytest.mark.parametrize(
    ("method", "url", "about_pages"),
    [
        ("GET", "/api/companies?countries=FR&paginate=true&page=40", True),
        ("GET", "/api/companies?page=3&countries=FR", True),
        ("DELETE", "/api/user/api-keys/3", False),
        ("GET", "/api/download-csv/?search_id=abc123", False),
        ("GET", "/api/export-status/abc123", False),
        (None, None, False),
    ],
)
def test_not_found_hint_depends_on_the_request(method, url, about_pages):
    text = str(error_for_status(404, {"detail": "Not found."}, method=method, url=url))
    assert ("num_pages" in text) is about_pages
    assert ("Check the id" in text) is not about_pages
