"""Durable sandbox state in SQLite: accounts, keys, tokens, searches, tasks, history, credits.

One connection guarded by a lock (SQLite serialises writers anyway); WAL journal so a reader
never waits for the export worker. Credentials are stored hashed: passwords with scrypt, API
keys with SHA-256 (a 256-bit random key needs no slow hash). Money moves only inside one
transaction that checks the balance, changes it and writes the ledger row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "Account",
    "InsufficientCredits",
    "SandboxClock",
    "State",
    "hash_api_key",
    "iso",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY, email TEXT UNIQUE NOT NULL, username TEXT NOT NULL,
    first_name TEXT NOT NULL, last_name TEXT NOT NULL, plan TEXT NOT NULL,
    password_hash TEXT NOT NULL, credits INTEGER NOT NULL, credits_used INTEGER NOT NULL,
    date_joined REAL NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL REFERENCES accounts(id),
    name TEXT NOT NULL, token_key TEXT NOT NULL, key_hash TEXT UNIQUE NOT NULL,
    created REAL NOT NULL, expiry REAL, revoked REAL);
CREATE TABLE IF NOT EXISTS refresh_tokens (
    jti TEXT PRIMARY KEY, account_id INTEGER NOT NULL, issued_at REAL NOT NULL,
    expires_at REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS searches (
    account_id INTEGER NOT NULL, search_id TEXT NOT NULL, filters TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (account_id, search_id));
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, account_id INTEGER NOT NULL, search_id TEXT NOT NULL,
    filters TEXT NOT NULL, status TEXT NOT NULL, lead_count INTEGER NOT NULL,
    object_name TEXT, error TEXT, created_at REAL NOT NULL, finished_at REAL,
    expires_at REAL, history_id INTEGER, polls INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS tasks_by_search ON tasks (account_id, search_id, created_at);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, search_id TEXT NOT NULL,
    filters TEXT NOT NULL, created_at REAL NOT NULL, row_count INTEGER NOT NULL,
    status TEXT NOT NULL, kind TEXT NOT NULL, parent_id INTEGER, task_id TEXT);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY, account_id INTEGER NOT NULL, delta INTEGER NOT NULL,
    balance INTEGER NOT NULL, reason TEXT NOT NULL, ref TEXT, created_at REAL NOT NULL);
"""

# History entries with their task's file and expiry (a delta has no task).
_HISTORY = (
    "SELECT h.*, t.object_name, t.expires_at FROM history h "
    "LEFT JOIN tasks t ON t.task_id = h.task_id"
)

_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def iso(ts: float | None) -> str | None:
    """Epoch seconds → ISO-8601 UTC with a ``Z`` (seconds precision)."""
    if ts is None:
        return None
    # isoformat, not strftime: "%Y" drops the zero padding of years before 1000 (RFC 3339).
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_iso(text: str) -> float:
    """ISO-8601 (``Z`` or offset; naive means UTC) → epoch seconds; ValueError if malformed."""
    value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))  # RFC 3339: t, z
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def hash_api_key(key: str) -> str:
    """Return the stored form of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def hash_password(password: str) -> str:
    """``scrypt$<salt hex>$<hash hex>``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against `hash_password` output."""
    try:
        _, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


class SandboxClock:
    """Wall clock plus an offset the control plane can move forward; strictly increasing."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        """Return the sandbox time (epoch seconds)."""
        with self._lock:
            now = max(time.time() + self.offset, self._last + 1e-6)
            self._last = now
            return now

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new now."""
        with self._lock:
            self.offset += seconds
        return self()


class InsufficientCredits(Exception):  # noqa: N818 (domain word, mirrors validation_code)
    """The balance does not cover a charge; nothing was charged."""

    def __init__(self, required: int, available: int) -> None:
        super().__init__(f"{required} credits required, {available} available")
        self.required = required
        self.available = available


@dataclass(frozen=True)
class Account:
    """An account row (without its password hash)."""

    id: int
    email: str
    username: str
    first_name: str
    last_name: str
    plan: str
    credits: int
    credits_used: int
    date_joined: float


class State:
    """The sandbox database.

    Parameters
    ----------
    path
        SQLite file (created if missing).
    clock
        The sandbox clock; every timestamp written comes from it.
    """

    def __init__(self, path: Path, clock: Callable[[], float]) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self.clock = clock
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One immediate (write-locking) transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, args).fetchall())

    # -- meta
    def get_meta(self, key: str) -> str | None:
        """Return a stored setting."""
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- accounts
    def create_account(
        self, email: str, password: str, credits: int, *, first_name: str = "", last_name: str = ""
    ) -> Account:
        """Insert an account with an opening credit balance (a ledger row)."""
        now = self.clock()
        with self.transaction() as db:
            cur = db.execute(
                "INSERT INTO accounts (email, username, first_name, last_name, plan, "
                "password_hash, credits, credits_used, date_joined) "
                "VALUES (?, ?, ?, ?, 'sandbox', ?, ?, 0, ?)",
                (
                    email,
                    email.split("@")[0],
                    first_name,
                    last_name,
                    hash_password(password),
                    credits,
                    now,
                ),
            )
            account_id = int(cur.lastrowid or 0)
            _ledger_row(db, account_id, credits, credits, "opening balance", None, now)
        account = self.account(account_id)
        assert account is not None
        return account

    def account(self, account_id: int) -> Account | None:
        """Account by id."""
        row = self._one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        return None if row is None else _account(row)

    def _account_row(self, email: str) -> sqlite3.Row | None:
        return self._one("SELECT * FROM accounts WHERE lower(email) = lower(?)", (email,))

    def account_by_email(self, email: str) -> Account | None:
        """Account by email (case-insensitive)."""
        row = self._account_row(email)
        return None if row is None else _account(row)

    def check_login(self, email: str, password: str) -> Account | None:
        """Return the account if the password matches."""
        row = self._account_row(email)
        if row is None or not check_password(password, row["password_hash"]):
            return None
        return _account(row)

    # -- API keys
    def add_api_key(
        self, account_id: int, key: str, name: str, expiry: float | None
    ) -> dict[str, Any]:
        """Store a key (hashed); returns the listing item."""
        now = self.clock()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO api_keys (account_id, name, token_key, key_hash, created, expiry) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (account_id, name, key[:8], hash_api_key(key), now, expiry),
            )
            key_id = int(cur.lastrowid or 0)
        return _key_item(key_id, name, key[:8], now, expiry)

    def has_api_key(self, key: str) -> bool:
        """Whether this key (revoked or not) is stored."""
        row = self._one("SELECT 1 FROM api_keys WHERE key_hash = ?", (hash_api_key(key),))
        return row is not None

    def api_key_lookup(self, key_hash: str) -> tuple[int, int, float | None] | None:
        """``(key_id, account_id, expiry)`` of a live (not revoked) key."""
        row = self._one(
            "SELECT id, account_id, expiry FROM api_keys WHERE key_hash = ? AND revoked IS NULL",
            (key_hash,),
        )
        return None if row is None else (row["id"], row["account_id"], row["expiry"])

    def list_api_keys(self, account_id: int) -> list[dict[str, Any]]:
        """Return an account's live keys, oldest first, never the key itself."""
        rows = self._all(
            "SELECT id, name, token_key, created, expiry FROM api_keys "
            "WHERE account_id = ? AND revoked IS NULL ORDER BY id",
            (account_id,),
        )
        return [
            _key_item(r["id"], r["name"], r["token_key"], r["created"], r["expiry"]) for r in rows
        ]

    def revoke_api_key(self, account_id: int, key_id: int) -> str | None:
        """Revoke one of the account's keys; returns its hash, None if not found."""
        with self._lock:
            row = self._conn.execute(
                "SELECT key_hash FROM api_keys WHERE id = ? AND account_id = ? AND revoked IS NULL",
                (key_id, account_id),
            ).fetchone()
            if row is None:
                return None
            self._conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE id = ?", (self.clock(), key_id)
            )
            return str(row["key_hash"])

    # -- refresh tokens
    def add_refresh(self, jti: str, account_id: int, issued_at: float, expires_at: float) -> None:
        """Record an issued refresh token."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO refresh_tokens (jti, account_id, issued_at, expires_at) "
                "VALUES (?, ?, ?, ?)",
                (jti, account_id, issued_at, expires_at),
            )

    def refresh_valid(self, jti: str, account_id: int) -> bool:
        """Whether a refresh token is known, not revoked and not expired (sandbox clock)."""
        row = self._one(
            "SELECT expires_at, revoked FROM refresh_tokens WHERE jti = ? AND account_id = ?",
            (jti, account_id),
        )
        return row is not None and not row["revoked"] and row["expires_at"] > self.clock()

    # -- searches
    def remember_search(self, account_id: int, search_id: str, filters: str) -> None:
        """Store the filters behind a search id (idempotent)."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO searches (account_id, search_id, filters, created_at) "
                "VALUES (?, ?, ?, ?)",
                (account_id, search_id, filters, self.clock()),
            )

    def search_filters(self, account_id: int, search_id: str) -> str | None:
        """Return the filters JSON of one of the account's searches."""
        row = self._one(
            "SELECT filters FROM searches WHERE account_id = ? AND search_id = ?",
            (account_id, search_id),
        )
        return None if row is None else str(row["filters"])

    # -- credits
    def _debit(
        self,
        db: sqlite3.Connection,
        account_id: int,
        amount: int,
        reason: str,
        ref: str | None,
        now: float,
    ) -> None:
        row = db.execute("SELECT credits FROM accounts WHERE id = ?", (account_id,)).fetchone()
        if row["credits"] < amount:
            raise InsufficientCredits(amount, int(row["credits"]))
        balance = int(row["credits"]) - amount
        db.execute(
            "UPDATE accounts SET credits = ?, credits_used = credits_used + ? WHERE id = ?",
            (balance, amount, account_id),
        )
        _ledger_row(db, account_id, -amount, balance, reason, ref, now)

    def ledger(self, account_id: int) -> list[dict[str, Any]]:
        """Ledger rows, oldest first."""
        rows = self._all("SELECT * FROM ledger WHERE account_id = ? ORDER BY id", (account_id,))
        return [
            {
                "id": r["id"],
                "delta": r["delta"],
                "balance": r["balance"],
                "reason": r["reason"],
                "ref": r["ref"],
                "created_at": iso(r["created_at"]),
            }
            for r in rows
        ]

    # -- tasks and history
    def start_export(
        self, account_id: int, search_id: str, filters: str, lead_count: int, task_id: str
    ) -> tuple[dict[str, Any], int]:
        """Charge, create the task and its (full) history entry in one transaction.

        Returns the task row and the history id; raises `InsufficientCredits`.
        """
        now = self.clock()
        with self.transaction() as db:
            self._debit(db, account_id, lead_count, "export", task_id, now)
            cur = db.execute(
                "INSERT INTO history (account_id, search_id, filters, created_at, row_count, "
                "status, kind, parent_id, task_id) VALUES (?, ?, ?, ?, ?, 'pending', 'full', "
                "NULL, ?)",
                (account_id, search_id, filters, now, lead_count, task_id),
            )
            history_id = int(cur.lastrowid or 0)
            db.execute(
                "INSERT INTO tasks (task_id, account_id, search_id, filters, status, lead_count, "
                "created_at, history_id) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
                (task_id, account_id, search_id, filters, lead_count, now, history_id),
            )
        task = self.task(task_id)
        assert task is not None
        return task, history_id

    def task(self, task_id: str) -> dict[str, Any] | None:
        """Return a task row."""
        row = self._one("SELECT * FROM tasks WHERE task_id = ?", (task_id,))
        return None if row is None else dict(row)

    def latest_task(self, account_id: int, search_id: str) -> dict[str, Any] | None:
        """Return the account's latest task for a search (live tasks are keyed by search)."""
        row = self._one(
            "SELECT * FROM tasks WHERE account_id = ? AND search_id = ? "
            "ORDER BY created_at DESC LIMIT 1",
            (account_id, search_id),
        )
        return None if row is None else dict(row)

    def count_poll(self, task_id: str) -> int:
        """Count one status poll; returns the new count."""
        with self._lock:
            self._conn.execute("UPDATE tasks SET polls = polls + 1 WHERE task_id = ?", (task_id,))
            row = self._conn.execute(
                "SELECT polls FROM tasks WHERE task_id = ?", (task_id,)
            ).fetchone()
            return int(row["polls"])

    def set_task_status(self, task_id: str, status: str) -> None:
        """Move a task (and its history entry) to ``status`` (pending/processing)."""
        with self.transaction() as db:
            db.execute("UPDATE tasks SET status = ? WHERE task_id = ?", (status, task_id))
            db.execute("UPDATE history SET status = ? WHERE task_id = ?", (status, task_id))

    def finish_task(self, task_id: str, object_name: str, expires_at: float) -> None:
        """Mark a task ready."""
        now = self.clock()
        with self.transaction() as db:
            db.execute(
                "UPDATE tasks SET status = 'ready', object_name = ?, finished_at = ?, "
                "expires_at = ? WHERE task_id = ?",
                (object_name, now, expires_at, task_id),
            )
            db.execute("UPDATE history SET status = 'ready' WHERE task_id = ?", (task_id,))

    def fail_task(self, task_id: str, error: str) -> None:
        """Mark a task failed and refund its charge, in one transaction (at most once)."""
        now = self.clock()
        with self.transaction() as db:
            row = db.execute(
                "SELECT account_id, lead_count, status FROM tasks WHERE task_id = ?", (task_id,)
            ).fetchone()
            if row is None or row["status"] in ("failed", "ready"):
                return
            db.execute(
                "UPDATE tasks SET status = 'failed', error = ?, finished_at = ? WHERE task_id = ?",
                (error, now, task_id),
            )
            db.execute("UPDATE history SET status = 'failed' WHERE task_id = ?", (task_id,))
            amount = int(row["lead_count"])
            db.execute(
                "UPDATE accounts SET credits = credits + ?, credits_used = credits_used - ? "
                "WHERE id = ?",
                (amount, amount, row["account_id"]),
            )
            balance = db.execute(
                "SELECT credits FROM accounts WHERE id = ?", (row["account_id"],)
            ).fetchone()["credits"]
            _ledger_row(
                db, row["account_id"], amount, balance, "refund: export failed", task_id, now
            )

    def expired_exports(self, now: float) -> list[str]:
        """Object names of ready exports whose signed URL expired at or before ``now``."""
        rows = self._all(
            "SELECT object_name FROM tasks WHERE status = 'ready' AND object_name IS NOT NULL "
            "AND expires_at <= ?",
            (now,),
        )
        return [str(r["object_name"]) for r in rows]

    def unfinished_tasks(self) -> list[str]:
        """Tasks left pending or processing (by a server that stopped)."""
        rows = self._all("SELECT task_id FROM tasks WHERE status IN ('pending', 'processing')")
        return [str(r["task_id"]) for r in rows]

    def record_delta(
        self, account_id: int, parent: dict[str, Any], row_count: int, exported_at: float
    ) -> int:
        """Charge a delta download and record its history entry; returns the new id."""
        with self.transaction() as db:
            ref = f"delta of history {parent['id']}"
            self._debit(db, account_id, row_count, "delta download", ref, exported_at)
            cur = db.execute(
                "INSERT INTO history (account_id, search_id, filters, created_at, row_count, "
                "status, kind, parent_id, task_id) VALUES (?, ?, ?, ?, ?, 'ready', 'delta', ?, "
                "NULL)",
                (
                    account_id,
                    parent["search_id"],
                    parent["filters"],
                    exported_at,
                    row_count,
                    parent["id"],
                ),
            )
            return int(cur.lastrowid or 0)

    def history_entry(self, account_id: int, entry_id: int) -> dict[str, Any] | None:
        """One of the account's history entries (with its task's object and expiry)."""
        row = self._one(f"{_HISTORY} WHERE h.id = ? AND h.account_id = ?", (entry_id, account_id))
        return None if row is None else dict(row)

    def history(self, account_id: int) -> list[dict[str, Any]]:
        """Return the account's history, newest first."""
        rows = self._all(
            f"{_HISTORY} WHERE h.account_id = ? ORDER BY h.created_at DESC, h.id DESC",
            (account_id,),
        )
        return [dict(r) for r in rows]


def _ledger_row(
    db: sqlite3.Connection,
    account_id: int,
    delta: int,
    balance: int,
    reason: str,
    ref: str | None,
    now: float,
) -> None:
    db.execute(
        "INSERT INTO ledger (account_id, delta, balance, reason, ref, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (account_id, delta, balance, reason, ref, now),
    )


def _key_item(
    key_id: int, name: str, token_key: str, created: float, expiry: float | None
) -> dict[str, Any]:
    return {
        "id": key_id,
        "name": name,
        "token_key": token_key,
        "created": iso(created),
        "expiry": iso(expiry),
    }


def _account(row: sqlite3.Row) -> Account:
    return Account(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        first_name=row["first_name"],
        last_name=row["last_name"],
        plan=row["plan"],
        credits=row["credits"],
        credits_used=row["credits_used"],
        date_joined=row["date_joined"],
    )
