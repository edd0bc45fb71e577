"""The scripted scene of the hostile-server tests: an honest SphereScout, ready to be spoilt.

:class:`Scene` scripts an API origin and a storage origin (:mod:`scripted`) as an honest
server would answer one export of :data:`EXPORT_ROWS` contacts, and makes clients and reads
against them; the data helpers make the contacts, search pages, export files and statuses
it hands out. Shared by ``test_hostile_servers.py`` (answers no honest server gives) and
``test_hostile_data.py`` (data, bounds and files).
"""

from __future__ import annotations

import csv
import io
import math
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from scripted import Answer, ScriptedOrigin, ScriptedServers, Seen, json_answer

import scoutframe
from scoutframe import clock as seam
from scoutframe.api.transport import is_loopback
from scoutframe.tables.schema import CONTACT_COLUMNS

KEY = "0123456789abcdef" * 4  # shaped like a real key (64 hex)
SIGNATURE = "5e1f" * 16
SEARCH_ID = "srch_hostile"
TASK_ID = "task_hostile"
FILTERS: dict[str, Any] = {"countries": "FR", "category": "Plumber"}
PROFILE = {
    "id": 7,
    "email": "hostile@example.test",
    "username": "hostile",
    "credits": 1_000,
    "credits_used": 0,
    "plan": "test",
}
COUNTRIES = [{"code": "FR", "name": "France"}, {"code": "BE", "name": "Belgium"}]
CATEGORIES = [
    {"id": 8059, "name": "Plumber", "gcid": "gcid:plumber"},
    {"id": 8060, "name": "Electrician", "gcid": "gcid:electrician"},
]
EXPORT_ROWS = 3
PAGE_SIZE = 50


# -- the data a scripted server hands out ---------------------------------------------------------


def contact_row(i: int) -> dict[str, str]:
    """One contact as the export CSV writes it (every field a string)."""
    return {
        "place_id": f"ChIJhostile{i:05d}",
        "name": f"Plomberie {i}",
        "email": f"contact{i}@plomberie.fr",
        "phone": f"+33 1 00 00 {i:02d} 00",
        "website": f"https://plomberie{i}.fr",
        "instagram": "",
        "facebook": "",
        "address": f"{i} rue de la Paix",
        "city": "Paris",
        "zipcode": "01000",
        "level1_location": "Île-de-France",
        "level2_location": "Paris",
        "level3_location": "Paris",
        "country": "FR",
        "categories": "Plumber",
        "rating": "4.5",
        "review_count": "12",
        "latitude": "48.85",
        "longitude": "2.35",
        "collected_at": "2026-11-01T10:00:00Z",
    }


def contact_json(i: int) -> dict[str, Any]:
    """One contact as a search answer carries it (emails masked, lists, numbers)."""
    row = contact_row(i)
    return {
        **row,
        "email": ["c***@p*******.fr"],
        "phone": [row["phone"]],
        "categories": ["Plumber"],
        "rating": 4.5,
        "review_count": 12,
        "latitude": 48.85,
        "longitude": 2.35,
    }


def export_csv(
    rows: int = EXPORT_ROWS,
    *,
    columns: list[str] | None = None,
    extra: dict[str, str] | None = None,
    duplicate: int | None = None,
) -> bytes:
    """The export file: the contract's columns (or ``columns``), ``extra`` columns appended."""
    names = list(CONTACT_COLUMNS) if columns is None else columns
    records = [contact_row(i) for i in range(rows)]
    if duplicate is not None:
        records.insert(duplicate + 1, dict(records[duplicate]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, *(extra or {})])
    for record in records:
        writer.writerow([*(record[n] for n in names), *(extra or {}).values()])
    return out.getvalue().encode()


def companies(total: int) -> Callable[[Seen], Answer]:
    """``/api/companies``: a preview, or page N of 50, of ``total`` contacts."""

    def answer(seen: Seen) -> Answer:
        query = dict(seen.query)
        pages = max(1, math.ceil(total / PAGE_SIZE))
        if query.get("paginate") == "true":
            number = int(query.get("page", "1"))
            if number > pages:
                return json_answer({"detail": "Invalid page."}, 404)
            first = (number - 1) * PAGE_SIZE
            contacts = [contact_json(i) for i in range(first, min(total, first + PAGE_SIZE))]
        else:
            number, contacts = 1, [contact_json(i) for i in range(min(total, 10))]
        return json_answer(
            {
                "totalCount": total,
                "search_id": SEARCH_ID,
                "preview": contacts,
                "page": number,
                "num_pages": pages,
            }
        )

    return answer


def status_answer(
    status: str = "ready", url: str | None = None, rows: int = EXPORT_ROWS, **extra: Any
) -> Answer:
    body: dict[str, Any] = {
        "task_id": TASK_ID,
        "status": status,
        "search_id": SEARCH_ID,
        "lead_count": rows,
        "progress": 1.0,
        **extra,
    }
    if url is not None:
        body["download_url"] = url
        body["expires_at"] = "2099-01-01T00:00:00Z"
    return json_answer(body)


def page_of(seen: Seen) -> int | None:
    """The page number of a ``/api/companies`` request in paged mode, else ``None``."""
    query = dict(seen.query)
    if seen.path.rstrip("/") != "/api/companies" or query.get("paginate") != "true":
        return None
    return int(query.get("page", "1"))


def alias_host() -> tuple[str, str]:
    """A host name of this machine that is not a literal loopback address, and its address.

    The client cannot know that such a name is local without resolving it, so it must treat
    it as any other host; a server listening on its address shows whether anything came.
    Falls back to a name that never resolves (RFC 6761) with no listener.
    """
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return "storage.invalid", ""
    if not name or is_loopback(name):
        return "storage.invalid", ""
    return name, address


class InstantClock(seam.Clock):
    """The real clock, except that sleeping returns at once (recorded): for stall budgets."""

    def __init__(self) -> None:
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


# -- the scene: scripted origins, a client, the checks every case makes ---------------------------


class Scene:
    """An API origin and a storage origin scripted as an honest server, ready to be spoilt."""

    def __init__(self, servers: ScriptedServers, tmp_path: Path) -> None:
        self.servers = servers
        self.api: ScriptedOrigin = servers.api
        self.storage: ScriptedOrigin = servers.storage
        self.cache_dir = tmp_path / "cache"
        self.state_dir = tmp_path / "state"
        self.tmp = tmp_path
        self.clients: list[scoutframe.Client] = []
        self.rows = EXPORT_ROWS  # what the search counts and the export charges
        self.csv = export_csv()
        self.download_url = self.storage.url_for(
            f"/exports/{TASK_ID}.csv?expires=4070908800&signature={SIGNATURE}"
        )
        api = self.api
        api.script("GET", "/api/user/profile", json_answer(PROFILE))
        api.script("GET", "/api/locations/countries", json_answer(COUNTRIES))
        api.script("GET", "/api/categories", json_answer(CATEGORIES))
        api.script("GET", "/api/companies", lambda seen: companies(self.rows)(seen))
        api.script("GET", "/api/user/search-history", json_answer({"count": 0, "results": []}))
        api.script(
            "GET",
            "/api/download-csv",
            lambda _: json_answer(
                {
                    "task_id": TASK_ID,
                    "status": "pending",
                    "search_id": SEARCH_ID,
                    "lead_count": self.rows,
                },
                202,
            ),
        )
        api.script(
            "GET",
            "/api/download-status/",
            lambda _: status_answer("ready", self.download_url, self.rows),
        )
        self.storage.script(
            "GET",
            "/exports/",
            lambda _: Answer(headers={"Content-Type": "text/csv"}, body=self.csv),
        )

    def client(self, **kwargs: Any) -> scoutframe.Client:
        options: dict[str, Any] = {
            "base_url": self.api.url,
            "allow_http": True,
            "state_dir": self.state_dir,
            "config_file": self.tmp / "none.toml",
            "max_retries": 1,
            "backoff_factor": 0.01,
            "poll_interval": (0.01, 0.05),
            "retry_after_cap": 5,
        }
        options.update(kwargs)
        client = scoutframe.Client(KEY, **options)
        self.clients.append(client)
        return client

    def read(self, client: scoutframe.Client, **kwargs: Any) -> Any:
        options: dict[str, Any] = {
            "client": client,
            "method": "export",
            "progress": False,
            "cache": True,
            "cache_dir": self.cache_dir,
        }
        options.update(kwargs)
        return scoutframe.read_spherescout(**FILTERS, **options)

    def starts(self) -> int:
        """Export starts the API received (each one may charge)."""
        return self.api.count("GET", "/api/download-csv")

    def count(self, method: str | None, prefix: str) -> int:
        return self.api.count(method, prefix)

    def cached_tables(self) -> list[Path]:
        return sorted(self.cache_dir.rglob("data.parquet")) if self.cache_dir.exists() else []

    def check(self, *, starts: int = 0, cache_written: bool = False) -> None:
        """What every case checks: starts, the cache, and Authorization only to the API."""
        assert self.starts() == starts, [s.target for s in self.api.requests]
        if not cache_written:
            assert self.cached_tables() == []
        leaks = self.servers.authorization_leaks()
        assert leaks == [], [(s.origin, s.method, s.target) for s in leaks]
        for seen in self.api.requests:  # the API origin always got the key, and only it
            assert seen.header("Authorization") in (f"Bearer {KEY}", f"Token {KEY}")

    def close(self) -> None:
        for client in self.clients:
            client.close()


def raises_quickly(kind: type[BaseException], call: Callable[[], Any]) -> BaseException:
    """Run ``call``; it must raise ``kind`` within 3 s (no sleeping through a Retry-After)."""
    started = time.monotonic()
    with pytest.raises(kind) as caught:
        call()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, f"took {elapsed:.1f} s"
    return caught.value
