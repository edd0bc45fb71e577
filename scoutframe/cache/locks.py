"""A cache entry's lock on S3: one object created by a conditional write, held by a lease.

``pyarrow.fs`` has no conditional write, so this speaks S3 through boto3:

* **acquire**: ``PutObject(If-None-Match: *)`` of ``<entry>/_lock``; exactly one of any number
  of writers, on any machines, gets a 200; the others a 412 (its body says who holds it:
  host, process, since when; never a credential);
* **hold**: a thread renews the lease every third of it with ``PutObject(If-Match: <etag>)``;
  a 412 there means another writer took the lock over, and the holder is told
  (:attr:`ObjectLock.lost`, checked before every commit);
* **stale**: a waiter that sees the same ETag for longer than the lease on *its own*
  monotonic clock (no clock of two machines is compared) takes the lock over with
  ``PutObject(If-Match: <that etag>)``: of several waiters one wins, and a holder that was
  only slow finds its lock lost at its next renewal or commit;
* **release**: ``DeleteObject(If-Match: <etag>)`` (a lock taken over is not deleted).

A process killed while holding the lock (SIGKILL, a lost machine) delays the next writer by
one lease, never more; :data:`DEFAULT_LEASE` is 30 s, ``SCOUTFRAME_CACHE_LEASE`` sets another.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from typing import Any, Self

from ..clock import clock
from ..errors import CacheError

__all__ = ["DEFAULT_LEASE", "ObjectLock", "lease_seconds"]

logger = logging.getLogger("scoutframe.cache")

#: Seconds a lock is held without a renewal before a waiter may take it over.
DEFAULT_LEASE = 30.0
ENV_LEASE = "SCOUTFRAME_CACHE_LEASE"


def lease_seconds() -> float:
    """Return the lease: ``SCOUTFRAME_CACHE_LEASE`` (seconds, at least 1), else 30 s."""
    raw = os.environ.get(ENV_LEASE, "").strip()
    try:
        return max(1.0, float(raw)) if raw else DEFAULT_LEASE
    except ValueError:
        return DEFAULT_LEASE


def _code(exc: Exception) -> str:
    """Return the S3 error code of a boto3 error (``""`` for anything else)."""
    from botocore.exceptions import ClientError

    if not isinstance(exc, ClientError):
        return ""
    return str(exc.response.get("Error", {}).get("Code", ""))


class ObjectLock:
    """The lock object ``s3://bucket/key`` (a context manager).

    Parameters
    ----------
    client
        A boto3 S3 client.
    bucket, key
        Where the lock object is.
    where
        The entry, for messages (a URI without credentials).
    timeout
        Seconds to wait for it before :class:`~scoutframe.errors.CacheError`.
    lease
        Seconds of a lease (default :func:`lease_seconds`).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        key: str,
        *,
        where: str,
        timeout: float,
        lease: float | None = None,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.where = where
        self.timeout = timeout
        self.lease = lease if lease is not None else lease_seconds()
        self.owner = uuid.uuid4().hex
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()

    def __repr__(self) -> str:
        state = "held" if self.etag and not self.lost else "lost" if self.lost else "free"
        return f"ObjectLock({self.where!r}, {state})"

    def _body(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "renewed_at": clock().now().isoformat(timespec="seconds"),
                "lease_seconds": self.lease,
            }
        ).encode()

    def _put(self, **condition: str) -> str:
        answer = self.client.put_object(
            Bucket=self.bucket, Key=self.key, Body=self._body(), **condition
        )
        return str(answer["ETag"])

    # -- acquire / release ----------------------------------------------------------------

    def acquire(self) -> None:
        """Wait for the lock (at most ``timeout`` seconds) and start renewing it."""
        seen: tuple[str, float] | None = None  # (etag, when first seen on our clock)
        deadline = clock().monotonic() + self.timeout
        pause = 0.05
        while True:
            try:
                self.etag = self._put(IfNoneMatch="*")
                break
            except Exception as exc:
                if _code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                    raise self._failed(exc) from exc
            holder = self._holder()
            now = clock().monotonic()
            if holder is not None:
                etag, _ = holder
                if seen is None or seen[0] != etag:
                    seen = (etag, now)
                elif now - seen[1] > self.lease and self._take_over(etag, holder[1]):
                    break
            if now > deadline:
                raise CacheError(
                    f"the cache entry {self.where} is locked by another writer "
                    f"({self._describe(holder)}) and was not released within {self.timeout:.0f} "
                    "s; try again later (a lock whose holder died is taken over once its "
                    f"lease of {self.lease:.0f} s has run out)"
                )
            clock().sleep(pause)
            pause = min(pause * 2, max(0.05, min(1.0, self.lease / 4)))
        self.lost = False
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._renew_loop, name="scoutframe-lock-lease", daemon=True
        )
        self._thread.start()

    def _holder(self) -> tuple[str, dict[str, Any]] | None:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.key)
            body = answer["Body"].read()
        except Exception as exc:
            if _code(exc) in ("NoSuchKey", "404", "NotFound"):
                return None  # released meanwhile: try again at once
            raise self._failed(exc) from exc
        try:
            facts = json.loads(body)
        except ValueError:
            facts = {}
        return str(answer["ETag"]), facts if isinstance(facts, dict) else {}

    def _take_over(self, etag: str, facts: dict[str, Any]) -> bool:
        try:
            self.etag = self._put(IfMatch=etag)
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict"):
                return False  # another waiter was first, or it was released
            raise self._failed(exc) from exc
        logger.warning(
            "took over the lock of %s: %s did not renew it for %.0f s",
            self.where,
            self._describe((etag, facts)),
            self.lease,
        )
        return True

    def release(self) -> None:
        """Stop renewing and delete the lock object, unless another writer took it over."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._guard:
            etag, self.etag = self.etag, None
        if etag is None or self.lost:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except Exception as exc:  # taken over meanwhile, or the store is unreachable
            logger.warning("could not release the lock of %s (%s)", self.where, _code(exc))

    # -- the lease --------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        last = clock().monotonic()
        while not self._stop.wait(self.lease / 3):
            with self._guard:
                if self.etag is None:
                    return
                try:
                    self.etag = self._put(IfMatch=self.etag)
                    last = clock().monotonic()
                except Exception as exc:
                    if _code(exc) in ("PreconditionFailed", "NoSuchKey"):
                        self.lost = True
                        logger.warning("the lock of %s was taken over", self.where)
                        return
                    if clock().monotonic() - last > self.lease:
                        self.lost = True
                        return

    def check(self) -> None:
        """Raise :class:`~scoutframe.errors.CacheError` when the lock was lost (commit fence)."""
        if self.lost or self.etag is None:
            raise CacheError(
                f"the lock of the cache entry {self.where} was lost (not renewed within its "
                f"lease of {self.lease:.0f} s, and another writer took it over); nothing was "
                "committed by this process. Run the refresh again: a paid delta it saved is "
                "merged without paying again"
            )

    def _describe(self, holder: tuple[str, dict[str, Any]] | None) -> str:
        if holder is None:
            return "unknown holder"
        facts = holder[1]
        return (
            f"host {facts.get('host', '?')}, process {facts.get('pid', '?')}, "
            f"renewed at {facts.get('renewed_at', '?')}"
        )

    def _failed(self, exc: Exception) -> CacheError:
        return CacheError(
            f"the lock of the cache entry {self.where} could not be taken "
            f"({type(exc).__name__} {_code(exc)}); check that the bucket exists and that these "
            "credentials may PutObject, GetObject and DeleteObject there"
        )

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
