"""One cache entry: a plain Parquet file, its manifest, its lock, through the cache's backend.

On the local backend (:class:`~scoutframe.cache.backend.LocalBackend`)::

    <cache dir>/<key>/
        data.parquet        the table, sorted by place_id; the provenance in its metadata
        _manifest.json      what the entry is (filters, method, account, history chain, sizes)
        .lock               the entry's file lock (filelock)
        _delta-<id>.csv     a paid delta not merged yet (kept so that it is never paid twice)
        .data.parquet.*.tmp a write in progress

Only ``data.parquet`` lacks a ``.`` or ``_`` prefix, so Spark, pyarrow, Dask, DuckDB and Polars
pointed at the directory see exactly the current table. Every write is whole or nothing
(:meth:`Backend.atomic_output <scoutframe.cache.backend.Backend.atomic_output>`): a process
killed at any moment leaves the old entry or the new one. The Parquet file is the commit
point: its metadata holds the full manifest, so a manifest left behind by a crash is rebuilt
from it.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import pyarrow as pa
import pyarrow.parquet as pq

from ..clock import clock
from ..errors import CacheError, LocalFileError
from ..files import write_failure
from ..models import Provenance
from ..tables import frames
from ..tables.schema import CONTACT_SCHEMA
from .backend import Backend

__all__ = ["CacheEntry", "Manifest", "PendingDelta"]

DATA = "data.parquet"
MANIFEST = "_manifest.json"
_DELTA_PREFIX = "_delta-"
#: Schema-metadata key of the manifest inside the Parquet file.
_MANIFEST_META = b"scoutframe_cache"
#: Rows per Parquet row group (and per slice of a streamed refresh): readers decode row
#: groups in parallel and skip them by their statistics.
ROW_GROUP_ROWS = 131_072
#: Columns with few distinct values, the only ones dictionary-encoded: trying a dictionary
#: on the others (ids, names, addresses, coordinates, times) costs time in every row group and
#: falls back to plain encoding anyway.
DICTIONARY_COLUMNS = (
    "country",
    "level1_location",
    "level2_location",
    "level3_location",
    "city",
    "zipcode",
    "categories",
    "rating",
    "review_count",
)

CachedMethod = Literal["pages", "export"]


@dataclass(frozen=True)
class Manifest:
    """What a cache entry holds. Never a credential.

    Attributes
    ----------
    key
        The entry's directory name: a hash of origin, account, filters, method and schema.
    origin
        The API origin the data came from.
    account
        The account's id (not a credential).
    filters
        The canonical, resolved filters.
    method
        ``"pages"`` (free, emails masked) or ``"export"`` (full data, refreshed by delta).
    schema_version
        :data:`scoutframe.cache.keys.SCHEMA_VERSION` when written.
    rows, bytes
        Rows in the table and size of the Parquet file.
    created_at, refreshed_at
        When the entry was first written and last brought up to date (UTC, ISO-8601).
    history_ids
        The export history entries that built it, in order: the full export, then each
        delta. The last one is where the next delta starts.
    search_id
        The API's id of the search.
    aliases
        Other spellings of the same filters that led here (names before resolution), so a
        read with ``cache="only"`` finds the entry without the network.
    """

    key: str
    origin: str
    account: str
    filters: Mapping[str, Any]
    method: CachedMethod
    schema_version: int
    rows: int = 0
    bytes: int = 0
    created_at: str = ""
    refreshed_at: str = ""
    history_ids: tuple[int, ...] = ()
    search_id: str | None = None
    aliases: tuple[str, ...] = ()
    credits_spent: int = field(default=0)

    VERSION = 1

    def __repr__(self) -> str:
        return (
            f"Manifest(key={self.key[:12]!r}, method={self.method!r}, rows={self.rows:,}, "
            f"filters={dict(self.filters)!r}, refreshed_at={self.refreshed_at!r})"
        )

    def _repr_html_(self) -> str:
        from ..models._display import card, number

        history = " → ".join(str(i) for i in self.history_ids) or None
        step = (
            "Refreshed by delta: read_spherescout(..., cache='refresh') pays only what changed."
            if self.method == "export"
            else "Read again by pages (free) on refresh; emails are masked."
        )
        return card(
            f"Cache entry {self.key[:12]} ({self.method})",
            [
                ("filters", dict(self.filters)),
                ("rows", number(self.rows)),
                ("size", number(self.bytes, "bytes")),
                ("created", self.created_at),
                ("refreshed", self.refreshed_at),
                ("history", history),
                ("credits spent on it", number(self.credits_spent)),
                ("origin", self.origin),
            ],
            step,
        )

    @property
    def last_history_id(self) -> int | None:
        """Where the next delta starts (``None`` for a pages entry)."""
        return self.history_ids[-1] if self.history_ids else None

    def age_seconds(self, now: datetime) -> float:
        """Seconds since the entry was last brought up to date."""
        return (now - datetime.fromisoformat(self.refreshed_at)).total_seconds()

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form (the file, and the Parquet metadata copy)."""
        data = asdict(self)
        data["filters"] = dict(self.filters)
        data["history_ids"] = list(self.history_ids)
        data["aliases"] = list(self.aliases)
        data["version"] = self.VERSION
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Self:
        """Read a manifest; raises ``KeyError``/``TypeError``/``ValueError`` when damaged."""
        method = data["method"]
        if method not in ("pages", "export"):
            raise ValueError(f"unknown method {method!r}")
        return cls(
            key=str(data["key"]),
            origin=str(data["origin"]),
            account=str(data["account"]),
            filters=dict(data["filters"]),
            method=method,
            schema_version=int(data["schema_version"]),
            rows=int(data.get("rows", 0)),
            bytes=int(data.get("bytes", 0)),
            created_at=str(data.get("created_at", "")),
            refreshed_at=str(data.get("refreshed_at", "")),
            history_ids=tuple(int(i) for i in data.get("history_ids", ())),
            search_id=data.get("search_id"),
            aliases=tuple(str(a) for a in data.get("aliases", ())),
            credits_spent=int(data.get("credits_spent", 0)),
        )


def now_iso() -> str:
    """Return the current UTC time as entries record it (ISO-8601)."""
    return clock().now().astimezone(UTC).isoformat(timespec="microseconds")


class CacheEntry:
    """The files of one entry (which may not exist yet), through its cache's backend.

    Parameters
    ----------
    backend
        Where the cache keeps its files (:mod:`scoutframe.cache.backend`).
    key
        The entry's key (:func:`scoutframe.cache.keys.entry_key`).
    """

    def __init__(self, backend: Backend, key: str) -> None:
        self.backend = backend
        self.key = key

    def __repr__(self) -> str:
        return f"CacheEntry({self.location!r})"

    @property
    def location(self) -> str:
        """Where the entry is, for messages: ``<cache location>/<key>``."""
        return f"{self.backend.location}/{self.key}"

    def exists(self) -> bool:
        """Whether a committed table is there."""
        return self.backend.size(self.key, DATA) is not None

    def size(self) -> int | None:
        """Return the size of the committed table's file in bytes (``None``: no table)."""
        return self.backend.size(self.key, DATA)

    def lock(self, timeout: float = 600.0) -> AbstractContextManager[object]:
        """Return the entry's inter-process lock (a context manager): one writer at a time.

        A second process (or notebook) waits here, then finds the entry as the first one
        left it: a refresh it would have done is already done, and not paid twice.
        """
        return self.backend.lock(self.key, timeout)

    # -- reading ------------------------------------------------------------------------------

    def manifest(self) -> Manifest | None:
        """Return the committed manifest (rebuilt from the Parquet file if the JSON is stale).

        Raises
        ------
        CacheError
            The data file is damaged or is not the table this entry committed (no manifest in
            its metadata, other row count, missing contract columns): never served.
        """
        if not self.exists():
            return None
        inside = self._manifest_in_parquet()
        try:
            text = self.backend.read_bytes(self.key, MANIFEST).decode("utf-8")
            outside = Manifest.from_json(json.loads(text))
        except (OSError, ValueError, KeyError, TypeError):
            outside = None
        if outside is not None and _same_data(outside, inside):
            return outside  # the JSON copy knows the size and the latest check
        # A crash between the data and the manifest, or a manifest lost: the data wins.
        inside = replace(inside, bytes=self.size() or 0)
        self.write_manifest(inside)
        return inside

    def way_back(self) -> str:
        """Say how to recover from a damaged entry, and what it costs."""
        return (
            f"Nothing was served from it. Remove it (scoutframe.Cache("
            f"{self.backend.location!r}).remove({self.key[:12]!r}), or `scoutframe cache remove "
            f"{self.key[:12]}`) and read again: an export is then downloaded again for free "
            "while its link is valid and nothing is new; otherwise the read is a new one, paid "
            "only with your consent, as any first read"
        )

    def _damaged(self, why: str) -> CacheError:
        return CacheError(f"the cache entry {self.location} is damaged: {why}. {self.way_back()}")

    def _unreadable(self, exc: BaseException) -> CacheError:
        reason = str(exc).splitlines()[0][:200] if str(exc) else ""
        return self._damaged(f"its table cannot be read ({type(exc).__name__}: {reason})")

    def _footer(self) -> pq.FileMetaData:
        with self.backend.open_input(self.key, DATA) as source:
            return pq.ParquetFile(source).metadata

    def _schema(self) -> pa.Schema:
        try:
            return self._footer().schema.to_arrow_schema()
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc

    def _manifest_in_parquet(self) -> Manifest:
        """Return the manifest the table was committed with, checked against the file itself."""
        try:
            footer = self._footer()
            schema = footer.schema.to_arrow_schema()
            raw = (schema.metadata or {}).get(_MANIFEST_META)
            inside = None if raw is None else Manifest.from_json(json.loads(raw))
        except (OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc
        if inside is None:
            why = [
                f"its {DATA} holds no scoutframe manifest in its metadata: it is not a table "
                "scoutframe committed there (another program's file, or a copy)",
                *_table_problems(schema, None, None),
            ]
            raise self._damaged("; ".join(why))
        problems = _table_problems(schema, footer.num_rows, inside.rows)
        if problems:
            raise self._damaged("; ".join(problems))
        return inside

    def read(self, columns: Sequence[str] | None = None) -> tuple[pa.Table, Provenance | None]:
        """Return the table (all columns, or ``columns``) and the provenance stored with it."""
        try:
            with self.backend.open_input(self.key, DATA) as source:
                table = pq.read_table(
                    source,
                    columns=list(columns) if columns else None,
                    page_checksum_verification=True,
                )
        except (OSError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc
        provenance = frames.provenance_of(table.schema)
        return table.replace_schema_metadata(None), provenance

    def slices(self) -> Iterator[pa.Table]:
        """Yield the table in consecutive slices of :data:`ROW_GROUP_ROWS` rows (no metadata)."""
        try:
            with self.backend.open_input(self.key, DATA) as source:
                handle = pq.ParquetFile(source, page_checksum_verification=True)
                for batch in handle.iter_batches(batch_size=ROW_GROUP_ROWS):
                    yield pa.Table.from_batches([batch]).replace_schema_metadata(None)
        except (OSError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc

    def head(self, rows: int, columns: Sequence[str] | None = None) -> pa.Table:
        """Return the first ``rows`` rows (of those of ``columns`` it has), reading no more."""
        try:
            with self.backend.open_input(self.key, DATA) as source:
                handle = pq.ParquetFile(source, page_checksum_verification=True)
                names = handle.schema_arrow.names
                wanted = names if columns is None else [c for c in columns if c in names]
                batch = next(handle.iter_batches(batch_size=max(rows, 1), columns=wanted), None)
        except (OSError, pa.ArrowException) as exc:
            raise self._unreadable(exc) from exc
        if batch is None:
            return pa.table({})
        return pa.Table.from_batches([batch]).slice(0, rows).replace_schema_metadata(None)

    def stored_provenance(self) -> Provenance | None:
        """Return the provenance stored with the table, without reading the table."""
        return frames.provenance_of(self._schema())

    # -- writing ------------------------------------------------------------------------------

    def commit(self, table: pa.Table, manifest: Manifest, provenance: Provenance) -> Manifest:
        """Write ``table`` as the entry's data, atomically; then its manifest. Return it.

        The caller holds :meth:`lock`.
        """
        slices = (
            table.slice(start, ROW_GROUP_ROWS) for start in range(0, table.num_rows, ROW_GROUP_ROWS)
        )
        committed, _ = self.commit_slices(
            slices, table.schema, replace(manifest, rows=table.num_rows), provenance
        )
        return committed

    def commit_slices(
        self,
        slices: Iterable[pa.Table],
        schema: pa.Schema,
        manifest: Manifest,
        provenance: Provenance,
    ) -> tuple[Manifest, pa.Table]:
        """Write the table given as slices, atomically; return the manifest and the table.

        A second thread encodes each slice while the next one is made, so producing the
        slices (a merge) overlaps the writing. ``manifest.rows`` must be the number of rows
        the slices add up to (the metadata is written first); otherwise nothing is committed.
        The table's file is the commit point: its metadata holds the manifest, and the JSON
        copy is written after it. The caller holds :meth:`lock`.
        """
        from ..tables.parquet import with_file_metadata

        self._drop_leftovers()
        # The metadata of every Parquet file scoutframe writes: the provenance, and what
        # plain pd.read_parquet needs to read it back (see scoutframe.tables.parquet).
        empty = schema.empty_table().replace_schema_metadata(None)
        schema = with_file_metadata(empty, provenance=provenance).schema
        meta = {
            **(schema.metadata or {}),
            _MANIFEST_META: json.dumps(replace(manifest, bytes=0).to_json()).encode(),
        }
        parts: list[pa.Table] = []
        reached: list[int] = []  # how far a failed write got (its temporary file goes)
        old_size, old_rows = self.size(), self._committed_rows()
        try:
            with self.backend.atomic_output(self.key, DATA) as temp:
                try:
                    with _BackgroundWriter(temp, schema.with_metadata(meta)) as writer:
                        for part in slices:
                            part = part.replace_schema_metadata(None)
                            parts.append(part)
                            writer.write(part)
                except BaseException:
                    with contextlib.suppress(OSError):
                        reached.append(temp.stat().st_size)
                    raise
                table = pa.concat_tables(parts) if parts else schema.empty_table()
                if table.num_rows != manifest.rows:
                    raise CacheError(
                        f"the cache entry {self.location} was not updated: {table.num_rows} "
                        f"rows were merged where {manifest.rows} were expected; nothing changed"
                    )
                manifest = replace(manifest, bytes=os.path.getsize(temp))
        except (OSError, CacheError) as exc:
            # A full disk (or any refusal of the OS) while the table is written: say where,
            # how much room it takes, and that the old entry and any paid file are kept.
            cause = exc.__cause__ if isinstance(exc, CacheError) else exc
            if not isinstance(cause, OSError) or isinstance(cause, LocalFileError):
                raise
            needed = _needed_bytes(manifest.rows, old_size, old_rows, reached)
            raise write_failure(
                cause,
                Path(self.location) / DATA,
                what=f"the cache entry {self.location}",
                needed=needed,
                kept="The entry is unchanged (its old table, if any, is still served) and no "
                "temporary file is left; a paid export or delta is kept, so the same read "
                "once there is room stores it without paying again",
            ) from cause
        self.write_manifest(manifest)
        return manifest, table.replace_schema_metadata(None)

    def _committed_rows(self) -> int | None:
        """Rows of the committed table (from its footer), ``None`` when there is none."""
        if not self.exists():
            return None
        with contextlib.suppress(OSError, ValueError, pa.ArrowException):
            return int(self._footer().num_rows)
        return None

    def _drop_leftovers(self) -> None:
        """Remove temporary files of writers killed mid-write (the caller holds the lock)."""
        for name in self.backend.leftovers(self.key):
            self.backend.remove(self.key, name)

    def leftovers(self) -> list[str]:
        """Temporary files a killed writer left (hidden from readers; gone at the next write)."""
        return self.backend.leftovers(self.key)

    def touch(self, manifest: Manifest) -> Manifest:
        """Record that the entry was found up to date now: only the manifest changes."""
        touched = replace(manifest, refreshed_at=now_iso())
        self.write_manifest(touched)
        return touched

    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest's JSON copy (atomic, 0600); the data file is not touched."""
        with self.backend.atomic_output(self.key, MANIFEST) as temp:
            temp.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=True), "utf-8")

    def remove(self) -> int:
        """Delete the entry's files; return the bytes freed."""
        return self.backend.remove(self.key)

    # -- paid deltas ----------------------------------------------------------------------

    def pending_delta(self, parent: int) -> PendingDelta:
        """Where a paid delta from history entry ``parent`` waits until it is merged."""
        return PendingDelta(self, f"{_DELTA_PREFIX}{parent}.csv")

    def pending_parents(self) -> list[int]:
        """Return the history entries whose paid deltas wait in the entry."""
        parents = []
        for name in self.backend.names(self.key):
            if name.startswith(_DELTA_PREFIX) and name.endswith(".csv"):
                with contextlib.suppress(ValueError):
                    parents.append(int(name.removeprefix(_DELTA_PREFIX).removesuffix(".csv")))
        return sorted(parents)


class PendingDelta:
    """A paid delta file kept in its cache entry until its rows are merged (paid once).

    Implements :class:`scoutframe.api.deltas.DeltaFile`.
    """

    def __init__(self, entry: CacheEntry, name: str) -> None:
        self.entry = entry
        self.name = name

    def __repr__(self) -> str:
        return f"PendingDelta({self.location!r})"

    @property
    def location(self) -> str:
        """Where the file is, for messages."""
        return f"{self.entry.location}/{self.name}"

    def exists(self) -> bool:
        """Whether a paid delta waits there."""
        return self.entry.backend.size(self.entry.key, self.name) is not None

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Give a local file to download into; it becomes the entry's file whole, or not at all.

        On a local backend that is the file itself (the download is atomic): a process killed
        right after paying finds the delta there, never only in a temporary file. A remote
        backend stages it on this machine and uploads it (:meth:`Backend.staged_output`).
        """
        with self.entry.backend.staged_output(self.entry.key, self.name) as path:
            yield path

    def reading(self) -> AbstractContextManager[Path]:
        """Give a local path holding the paid delta, for the duration of the block."""
        return self.entry.backend.local_copy(self.entry.key, self.name)

    def remove(self) -> None:
        """Forget the file once its rows are merged and committed."""
        self.entry.backend.remove(self.entry.key, self.name)


def _write_options(schema: pa.Schema) -> dict[str, Any]:
    """Return the Parquet writer options of an entry's table (see :data:`DICTIONARY_COLUMNS`)."""
    paths = []
    for name in DICTIONARY_COLUMNS:
        if name in schema.names:
            kind = schema.field(name).type
            nested = pa.types.is_list(kind) or pa.types.is_large_list(kind)
            paths.append(f"{name}.list.element" if nested else name)  # a list's values
    return {"use_dictionary": paths}


class _BackgroundWriter:
    """A Parquet writer whose encoding runs in a thread, two slices behind at most.

    Errors of the thread come out of :meth:`write` or the ``with`` block; leaving the block
    by an exception (Ctrl-C included) stops the thread and leaves the file to be discarded.
    """

    _DONE = object()

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        # Page checksums: a flipped bit in a data page is an error when read, not other rows.
        self._writer = pq.ParquetWriter(
            path, schema, write_page_checksum=True, **_write_options(schema)
        )
        self._queue: queue.Queue[object] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="scoutframe-cache-writer", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while (part := self._queue.get()) is not self._DONE:
            if self._error is None:
                try:
                    self._writer.write_table(part, row_group_size=ROW_GROUP_ROWS)
                except BaseException as exc:  # reported to the producer, which stops
                    self._error = exc

    def write(self, part: pa.Table) -> None:
        self._raise_error()
        self._queue.put(part)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise CacheError(
                f"the cache entry could not be written ({type(self._error).__name__}: "
                f"{self._error}); nothing changed"
            ) from self._error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        self._queue.put(self._DONE)
        self._thread.join()
        if kind is None and self._error is None:
            self._writer.close()
        else:  # the file is discarded: only release it
            with contextlib.suppress(Exception):
                self._writer.close()
        if kind is None:
            self._raise_error()


def _needed_bytes(
    rows: int, old_size: int | None, old_rows: int | None, reached: list[int]
) -> int | None:
    """Estimate the bytes a table of ``rows`` rows takes: the old table's bytes a row, scaled.

    Without an old table, what the failed write got to (a lower bound), if known.
    """
    if old_size and old_rows:
        return max(round(old_size * rows / old_rows), *reached)
    return max(reached, default=None) or None


def _table_problems(schema: pa.Schema, rows: int | None, expected_rows: int | None) -> list[str]:
    """Return what is wrong with a committed table's file, from its footer alone (cheap)."""
    problems = []
    if rows is not None and expected_rows is not None and rows != expected_rows:
        problems.append(f"its table has {rows:,} rows where its manifest says {expected_rows:,}")
    missing = [f.name for f in CONTACT_SCHEMA if f.name not in schema.names]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        problems.append(f"{len(missing)} of the contacts' columns are missing ({shown})")
    for wanted in CONTACT_SCHEMA:
        if wanted.name in schema.names and schema.field(wanted.name).type != wanted.type:
            problems.append(
                f"column {wanted.name} is {schema.field(wanted.name).type}, not {wanted.type}"
            )
    return problems


def _same_data(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests describe the same table (size, last check, aliases aside)."""
    blank = {"bytes": 0, "refreshed_at": "", "aliases": ()}
    return replace(a, **blank) == replace(b, **blank)  # type: ignore[arg-type]


def utc_now() -> datetime:
    """Return the current UTC time on the clock seam (for ages)."""
    return clock().now()
