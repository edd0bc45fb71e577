"""Storage credentials never leave the objects that use them: no file, log line, repr or error.

A cache on S3 (moto's server on loopback) filled and refreshed by delta with
``storage_options=`` holding a distinctive secret key, in both table formats; then every
object in the bucket, every file under the test's directories, every log record (all
loggers, DEBUG), the reprs of what the read built, the frame's provenance and the messages of
the errors a wrong endpoint and a wrong key cause are searched for the secret.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

import scoutframe
from scoutframe import Client, read_spherescout
from scoutframe.errors import ScoutError
from scoutframe.filesystems import S3Settings, resolve
from scoutframe.read.api import _cache_request
from scoutframe.sandbox import Sandbox


@pytest.mark.parametrize("table_format", ["parquet", "delta"])
def test_the_secret_key_is_in_no_object_file_log_repr_or_error(
    sandbox_docs: Sandbox,
    s3_server: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    table_format: str,
) -> None:
    secret = s3_server.secret_key
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))
    caplog.set_level(logging.DEBUG)  # every logger, boto3's and botocore's included
    account = sandbox_docs.admin.create_account(credits=100_000)
    prefix = f"secrets-{table_format}"
    options = s3_server.storage_options
    kwargs: dict[str, Any] = {
        "countries": "FR",
        "method": "export",
        "cache": True,
        "cache_dir": s3_server.uri(prefix),
        "storage_options": options,
        "cache_format": table_format,
        "progress": False,
    }
    with Client(account["api_key"], sandbox_docs.url, allow_http=True,
                state_dir=tmp_path / "state", poll_interval=(0.02, 0.1)) as client:  # fmt: skip
        first = read_spherescout(client=client, **kwargs)
        sandbox_docs.admin.recollect(400)  # some of them in FR
        refreshed = read_spherescout(client=client, **{**kwargs, "cache": "refresh"})
        assert refreshed.attrs["scoutframe"]["credits_spent"] > 0
        cache = scoutframe.Cache(s3_server.uri(prefix), storage_options=options)
        entry = cache.entry(first.attrs["scoutframe"]["cache_entry"])
        texts = [
            repr(cache),
            repr(cache.backend),
            repr(entry),
            repr(entry.manifest()),
            repr(resolve(s3_server.uri(prefix), storage_options=options)),
            repr(S3Settings.from_options(options)),
            repr(_cache_request(True, None, s3_server.uri(prefix), storage_options=options)),
            str(first.attrs),
            str(refreshed.attrs),
            cache.entries().to_string(),
            cache.verify().to_string(),
        ]
        wrong = {**options, "aws_secret_access_key": secret + "x"}  # refused by the store?
        bad_endpoint = {**options, "aws_endpoint_url": "http://127.0.0.1:9"}  # nothing there
        for broken in (bad_endpoint,):
            with pytest.raises((ScoutError, OSError)) as caught:
                read_spherescout(client=client, **{**kwargs, "storage_options": broken,
                                                   "cache": "refresh"})  # fmt: skip
            texts.append(f"{caught.value!r} {caught.value}")
        scoutframe.Cache(s3_server.uri(prefix), storage_options=wrong).entries()  # moto: any key
    objects = s3_server.keys(f"{prefix}/")
    assert any("_delta_log" in k or "_versions" in k for k in objects)
    for key in objects:
        assert secret.encode() not in s3_server.read(key), key
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    for record in caplog.records:
        assert secret not in record.getMessage(), record.name
    for text in texts:
        assert secret not in text
