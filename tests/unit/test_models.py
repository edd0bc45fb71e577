"""Records are built leniently: live shapes, missing optional fields, unknown extra fields."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from scoutframe.errors import APIError
from scoutframe.models import ApiKey, Profile, SearchPage, parse_datetime

CONTACT = {"place_id": "ChIJ1", "name": "A", "email": ["j***@d*****.fr"], "phone": "+33 1"}


def test_search_page_docs_shape():
    page = SearchPage.from_json(
        {
            "totalCount": 1842,
            "search_id": "srch_1",
            "preview": [CONTACT],
            "page": 1,
            "num_pages": 37,
        }
    )
    assert (page.total_count, page.search_id, page.page, page.num_pages) == (1842, "srch_1", 1, 37)
    assert page.contacts == [{**CONTACT, "phone": [CONTACT["phone"]]}]  # normalised
    assert page.extra == {}
    assert len(page) == 1


def test_search_page_live_extras_and_missing_fields():
    page = SearchPage.from_json(
        {
            "totalCount": "12",
            "preview": [CONTACT, "junk"],
            "credits_per_lead": 1,
            "is_capped": False,
        }
    )
    assert page.total_count == 12
    assert page.search_id is None
    assert page.page is None
    # A non-object entry is dropped; the live phone string becomes a list, as in the frames.
    assert page.contacts == [{**CONTACT, "phone": [CONTACT["phone"]]}]
    assert page.extra == {"credits_per_lead": 1, "is_capped": False}


def test_search_page_alternative_spellings():
    page = SearchPage.from_json({"total_count": 3, "results": [CONTACT], "numPages": 1})
    assert (page.total_count, page.num_pages, len(page.contacts)) == (3, 1, 1)


def test_profile_lenient():
    profile = Profile.from_json(
        {
            "id": 1,
            "email": "a@b.c",
            "username": "a",
            "credits": 120,
            "credits_used": 30,
            "plan": "pro",
            "date_joined": "2025-01-02T03:04:05Z",
            "team": {"id": 9},
        }
    )
    assert profile.credits == 120
    assert profile.date_joined == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert profile.extra == {"team": {"id": 9}}
    minimal = Profile.from_json({"credits": 5})
    assert minimal.credits == 5
    assert minimal.email is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        minimal.credits = 6  # type: ignore[misc]


def test_api_key_hides_the_key():
    key = "ab" * 32
    item = ApiKey.from_json(
        {
            "id": 3,
            "name": "nb",
            "token_key": key[:8],
            "created": "2026-01-01T00:00:00+00:00",
            "expiry": None,
            "key": key,
            "scopes": ["read"],
        }
    )
    assert item.key == key
    assert key not in repr(item)
    assert key not in str(item)
    assert item.extra == {"scopes": ["read"]}
    assert item.expiry is None
    listed = ApiKey.from_json({"id": 3, "name": "nb", "token_key": "abababab"})
    assert listed.key is None
    assert "key=" not in repr(listed).replace("token_key=", "")


def test_non_object_answers_are_api_errors():
    with pytest.raises(APIError, match="expected a JSON object"):
        Profile.from_json(["not", "an", "object"])
    with pytest.raises(APIError):
        SearchPage.from_json("html")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T03:04:05", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T04:04:05+01:00", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (None, None),
        ("", None),
        ("not a date", None),
    ],
)
def test_parse_datetime(value, expected):
    assert parse_datetime(value) == expected


def test_reference_frames_have_dtypes_and_keep_extra_fields():
    from scoutframe.api.endpoints._frames import records_frame
    from scoutframe.api.endpoints.locations import LOCATION_DTYPES
    from scoutframe.api.endpoints.reference import CATEGORY_DTYPES

    items = [
        {"id": 8059, "name": "Plumber", "gcid": "gcid:plumber", "popularity": 0.9},
        {"id": "8060", "name": "Roofer"},  # live: id as a string, gcid missing
    ]
    frame = records_frame(items, CATEGORY_DTYPES)
    assert list(frame.columns) == ["id", "name", "gcid", "popularity"]
    assert [str(t) for t in frame.dtypes[:3]] == ["Int64", "string", "string"]
    assert frame["id"].tolist() == [8059, 8060]
    assert frame["gcid"].isna().tolist() == [False, True]
    empty = records_frame([], LOCATION_DTYPES)
    assert list(empty.columns) == list(LOCATION_DTYPES)
    assert len(empty) == 0
    assert str(empty["parent_id"].dtype) == "Int64"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("pending", "pending"),
        ("PROCESSING", "processing"),
        ("completed", "ready"),
        ("ready", "ready"),
        ("failed", "failed"),
        ("something-new", "processing"),
        (None, "processing"),
    ],
)
def test_status_words_are_normalised(word, expected):
    from scoutframe.models import normalize_status

    assert normalize_status(word) == expected


def test_status_from_live_answer_keeps_unknown_fields_and_hides_the_url():
    from scoutframe.models import ExportStatus

    signed = "http://127.0.0.2:9/exports/task_1.csv?expires=99&signature=deadbeefcafe"
    status = ExportStatus.from_json(
        {
            "status": "completed",
            "search_id": "s1",
            "lead_count": "12",
            "download_url": signed,
            "expires_at": "2026-12-28T10:00:00Z",
            "shard": 3,
        }
    )
    assert status.status == "ready"
    assert status.lead_count == 12
    assert status.expires_at == datetime(2026, 12, 28, 10, tzinfo=UTC)
    assert status.extra == {"search_id": "s1", "shard": 3}
    assert "signature" not in repr(status)
    assert status.is_finished


def test_link_validity_follows_the_retry_clock(fake_clock):
    from datetime import timedelta

    from scoutframe.models import ExportStatus, link_is_valid

    now = fake_clock.now()
    assert link_is_valid("u", None)
    assert link_is_valid("u", now + timedelta(seconds=1))
    assert not link_is_valid("u", now)
    assert not link_is_valid(None, None)
    ready = ExportStatus(status="ready", download_url="u", expires_at=now + timedelta(days=1))
    assert ready.has_valid_link
    fake_clock.sleep(2 * 86400)
    assert not ready.has_valid_link


def test_job_handles_read_leniently():
    from scoutframe.models import JobHandle

    handle = JobHandle.from_json(
        {
            "search_id": "s",
            "state": "weird",
            "lead_count": "x",
            "created_at": "not a date",
            "flavor": "live",
        }
    )
    assert handle.state == "active"
    assert handle.lead_count is None
    assert handle.flavor == "live"
    assert handle.created_at.year == 1970
    assert JobHandle.from_json(handle.to_json()) == handle


@pytest.mark.parametrize(
    "answer",
    [
        {"foo": 1},
        {"totalCount": 3, "preview": {"a": 1}},
        {"totalCount": "many", "preview": []},
        {"totalCount": True, "preview": []},
        {"preview": []},
        {"totalCount": 2},
        [],
        "ok",
    ],
)
def test_malformed_search_answers_are_errors_not_empty_results(answer):
    with pytest.raises(APIError, match=r"malformed|expected a JSON object"):
        SearchPage.from_json(answer)


def test_search_contacts_are_normalised_like_the_frames():
    page = SearchPage.from_json(
        {
            "totalCount": 1,
            "preview": [
                {
                    "place_id": "p",
                    "phone": "+1 555",
                    "email": None,
                    "categories": ["Plumber", ""],
                    "website": "",
                    "instagram": "",
                    "rating": 4.5,
                }
            ],
        }
    )
    assert page.contacts == [
        {
            "place_id": "p",
            "phone": ["+1 555"],
            "email": [],
            "categories": ["Plumber"],
            "website": None,
            "instagram": None,
            "rating": 4.5,
        }
    ]
