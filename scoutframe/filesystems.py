"""Where files live when they are not (only) on this disk: a location as a pyarrow filesystem.

One place turns what a user passes (a local path, an ``s3://bucket/prefix`` URI, any URI
pyarrow or fsspec knows, a ``filesystem=`` object, ``storage_options=``) into a
:class:`StoreLocation`: a pyarrow :class:`~pyarrow.fs.FileSystem`, the path on it, and what
the engines that do their own I/O need (delta-rs, boto3 for S3's conditional writes).

Credentials come from ``storage_options`` or the usual places (the ``AWS_*`` environment
variables, ``~/.aws`` profiles, instance roles), and never leave this object: its ``repr``,
:attr:`StoreLocation.uri` and every message name only the scheme, bucket and prefix. Storage
options are accepted in the spelling of object_store/delta-rs/Polars (``aws_access_key_id``,
``AWS_ENDPOINT_URL``, case-insensitive, ``aws_`` optional) and of s3fs/pandas (``key``,
``secret``, ``token``, ``client_kwargs={"endpoint_url": ...}``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._redact import redact_url
from .errors import ArgumentError
from .extras import require

if TYPE_CHECKING:
    import pyarrow.fs as pafs

__all__ = ["S3Settings", "StoreLocation", "is_remote", "resolve"]

#: The storage option names understood, by what they mean (lower case, ``aws_`` removed).
_ALIASES = {
    "access_key_id": "access_key",
    "access_key": "access_key",
    "key": "access_key",
    "secret_access_key": "secret_key",
    "secret_key": "secret_key",
    "secret": "secret_key",
    "session_token": "session_token",
    "token": "session_token",
    "region": "region",
    "region_name": "region",
    "default_region": "region",
    "endpoint_url": "endpoint",
    "endpoint": "endpoint",
    "endpoint_override": "endpoint",
    "allow_http": "allow_http",
    "profile": "profile",
}


def is_remote(location: object) -> bool:
    """Whether ``location`` is a URI of another filesystem than this disk (``s3://...``)."""
    if not isinstance(location, str):
        return False
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme.lower() not in ("file", "") and len(scheme) > 1


@dataclass(frozen=True)
class S3Settings:
    """What the S3 clients need, from ``storage_options`` or the environment. Never printed."""

    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str | None = None
    endpoint: str | None = None
    profile: str | None = None
    allow_http: bool = False

    def __repr__(self) -> str:
        endpoint = None if self.endpoint is None else redact_url(self.endpoint)
        return f"S3Settings(region={self.region!r}, endpoint={endpoint!r})"

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> S3Settings:
        """Read storage options (either spelling); the environment fills the endpoint."""
        found: dict[str, Any] = {}
        for name, value in dict(options or {}).items():
            if name == "client_kwargs" and isinstance(value, Mapping):
                for inner, inner_value in value.items():
                    meaning = _ALIASES.get(str(inner).lower().removeprefix("aws_"))
                    if meaning is not None:
                        found[meaning] = inner_value
                continue
            if name == "config_kwargs":
                continue
            meaning = _ALIASES.get(str(name).lower().removeprefix("aws_"))
            if meaning is None:
                raise ArgumentError(
                    f"storage option {name!r} is not known; use aws_access_key_id, "
                    "aws_secret_access_key, aws_session_token, aws_region, aws_endpoint_url, "
                    "aws_allow_http or aws_profile (or the s3fs spellings key, secret, token, "
                    "client_kwargs={'endpoint_url': ...})"
                )
            found[meaning] = value
        endpoint = found.get("endpoint") or os.environ.get("AWS_ENDPOINT_URL_S3")
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        allow = found.get("allow_http", os.environ.get("AWS_ALLOW_HTTP", ""))
        allow_http = str(allow).strip().lower() in ("1", "true", "yes") or bool(
            endpoint and str(endpoint).startswith("http://")
        )
        region = found.get("region") or os.environ.get("AWS_REGION")
        region = region or os.environ.get("AWS_DEFAULT_REGION") or None
        return cls(
            access_key=found.get("access_key"),
            secret_key=found.get("secret_key"),
            session_token=found.get("session_token"),
            region=None if region is None else str(region),
            endpoint=None if endpoint is None else str(endpoint),
            profile=found.get("profile"),
            allow_http=allow_http,
        )

    @property
    def secrets(self) -> tuple[str, ...]:
        """The values to scrub from any text (for :func:`scoutframe._redact.redact`)."""
        return tuple(s for s in (self.access_key, self.secret_key, self.session_token) if s)

    def pyarrow_filesystem(self) -> pafs.FileSystem:
        """Return a ``pyarrow.fs.S3FileSystem`` (credentials: these, else the AWS chain)."""
        import pyarrow.fs as pafs

        kwargs: dict[str, Any] = {"region": self.region or "us-east-1"}
        if self.access_key and self.secret_key:
            kwargs.update(
                access_key=self.access_key,
                secret_key=self.secret_key,
                session_token=self.session_token,
            )
        if self.endpoint:
            scheme, _, host = self.endpoint.partition("://")
            kwargs["endpoint_override"] = host.rstrip("/") or self.endpoint
            kwargs["scheme"] = scheme or "https"
        return pafs.S3FileSystem(**kwargs)

    def boto3_client(self) -> Any:
        """Return a boto3 S3 client (for the conditional writes pyarrow does not offer)."""
        boto3 = require("boto3", feature="a cache on S3 (its lock)", extra="s3")
        from botocore.config import Config

        session = boto3.session.Session(profile_name=self.profile) if self.profile else boto3
        return session.client(
            "s3",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
            region_name=self.region or "us-east-1",
            endpoint_url=self.endpoint,
            config=Config(retries={"max_attempts": 5, "mode": "standard"}),
        )

    def delta_options(self) -> dict[str, str]:
        """Return the storage options of delta-rs (object_store's names)."""
        options: dict[str, str] = {"AWS_REGION": self.region or "us-east-1"}
        if self.access_key and self.secret_key:
            options["AWS_ACCESS_KEY_ID"] = self.access_key
            options["AWS_SECRET_ACCESS_KEY"] = self.secret_key
            if self.session_token:
                options["AWS_SESSION_TOKEN"] = self.session_token
        if self.endpoint:
            options["AWS_ENDPOINT_URL"] = self.endpoint
        if self.allow_http:
            options["AWS_ALLOW_HTTP"] = "true"
        if self.profile:
            options["AWS_PROFILE"] = self.profile
        return options


class StoreLocation:
    """A directory on some filesystem: where a cache, a dataset or a Delta table lives.

    Attributes
    ----------
    filesystem
        The pyarrow filesystem every file operation goes through.
    path
        The directory's path on it (``bucket/prefix`` on S3; an absolute path locally).
    uri
        How to name it in messages and provenance: ``s3://bucket/prefix`` or the local path.
        Never a credential.
    local
        Whether it is a directory of this machine.
    s3
        The S3 settings when it is on S3 (for boto3 and delta-rs), else ``None``.
    """

    def __init__(
        self,
        filesystem: pafs.FileSystem,
        path: str,
        uri: str,
        *,
        local: bool,
        s3: S3Settings | None = None,
    ) -> None:
        self.filesystem = filesystem
        self.path = path.rstrip("/") if path not in ("/", "") else path
        self.uri = uri.rstrip("/")
        self.local = local
        self.s3 = s3

    def __repr__(self) -> str:
        return f"StoreLocation({self.uri!r})"

    def join(self, *parts: str) -> str:
        """Return the filesystem path of ``parts`` under this directory."""
        return "/".join([self.path, *parts]) if self.path else "/".join(parts)

    def uri_of(self, *parts: str) -> str:
        """Return the URI (or local path) of ``parts`` under this directory."""
        return "/".join([self.uri, *parts])

    def engine_options(self) -> dict[str, str]:
        """Return the storage options of engines that do their own I/O (delta-rs, Polars)."""
        return {} if self.s3 is None else self.s3.delta_options()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credential values to scrub from any text built near this location."""
        return () if self.s3 is None else self.s3.secrets


def resolve(
    location: str | os.PathLike[str],
    *,
    storage_options: Mapping[str, Any] | None = None,
    filesystem: Any = None,
) -> StoreLocation:
    """Return the :class:`StoreLocation` of a path or URI.

    Parameters
    ----------
    location
        A local path, ``file://``, ``s3://bucket/prefix`` or any URI pyarrow or fsspec knows.
    storage_options
        Credentials and endpoint for the store (see the module documentation); ``None``: the
        environment.
    filesystem
        A ``pyarrow.fs.FileSystem`` or an fsspec filesystem to use instead of the URI's own;
        ``location`` is then a path on it.

    Raises
    ------
    ArgumentError
        An unknown scheme, an unknown storage option, or both ``filesystem`` and
        ``storage_options``.
    """
    import pyarrow.fs as pafs

    text = os.fspath(location)
    if filesystem is not None:
        if storage_options:
            raise ArgumentError(
                "pass either filesystem= or storage_options=, not both (the filesystem "
                "object carries its own credentials)"
            )
        return _from_filesystem(filesystem, text)
    if text.lower().startswith("file://"):
        text = text[len("file://") :]
    if not is_remote(text):
        if storage_options:
            raise ArgumentError(
                f"storage_options= are for a remote store (s3://...), not the local path {text}"
            )
        path = str(Path(text).expanduser().absolute())
        return StoreLocation(pafs.LocalFileSystem(), path, path, local=True)
    scheme, _, rest = text.partition("://")
    scheme = scheme.lower()
    if scheme in ("s3", "s3a"):
        settings = S3Settings.from_options(storage_options)
        bare = rest.strip("/")
        return StoreLocation(
            settings.pyarrow_filesystem(), bare, f"s3://{bare}", local=False, s3=settings
        )
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except ValueError:  # pyarrow.ArrowInvalid: a scheme pyarrow does not know
        fs = None
    if fs is not None and not storage_options:
        return StoreLocation(fs, path, redact_url(text), local=False)
    return _from_fsspec(scheme, rest, storage_options, redact_url(text))


def _from_filesystem(filesystem: Any, path: str) -> StoreLocation:
    import pyarrow.fs as pafs

    if not isinstance(filesystem, pafs.FileSystem):
        try:
            from fsspec import AbstractFileSystem
        except ImportError:  # pragma: no cover - fsspec ships with dask/s3fs
            AbstractFileSystem = None  # noqa: N806
        if AbstractFileSystem is None or not isinstance(filesystem, AbstractFileSystem):
            raise ArgumentError(
                "filesystem= must be a pyarrow.fs.FileSystem or an fsspec filesystem, not "
                f"{type(filesystem).__name__}"
            )
        protocol = filesystem.protocol
        name = protocol[0] if isinstance(protocol, tuple | list) else str(protocol)
        wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
        return StoreLocation(wrapped, path.rstrip("/"), f"{name}://{path.strip('/')}", local=False)
    if isinstance(filesystem, pafs.LocalFileSystem):
        absolute = str(Path(path).expanduser().absolute())
        return StoreLocation(filesystem, absolute, absolute, local=True)
    if isinstance(filesystem, pafs.S3FileSystem):
        bare = path.removeprefix("s3://").strip("/")
        # boto3 (the lock) and delta-rs take credentials from the environment: the
        # filesystem object does not hand its own out.
        return StoreLocation(
            filesystem, bare, f"s3://{bare}", local=False, s3=S3Settings.from_options(None)
        )
    return StoreLocation(
        filesystem, path.rstrip("/"), f"{filesystem.type_name}://{path}", local=False
    )


def _from_fsspec(
    scheme: str, rest: str, storage_options: Mapping[str, Any] | None, uri: str
) -> StoreLocation:
    import pyarrow.fs as pafs

    try:
        import fsspec

        fs = fsspec.filesystem(scheme, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ArgumentError(
            f"no filesystem for {uri!r}: pyarrow does not know the scheme {scheme!r} and "
            "fsspec has no implementation installed for it; use s3://..., a local path, or "
            "pass filesystem= a pyarrow or fsspec filesystem"
        ) from exc
    wrapped = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
    return StoreLocation(wrapped, rest.rstrip("/"), uri, local=False)
