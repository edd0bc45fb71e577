"""A real S3 API on loopback for the tests, notebooks and benchmarks: moto in server mode.

``S3Server()`` starts ``moto.server`` in a subprocess of its own (its own core and GIL, as a
remote store would be) on a free 127.0.0.1 port, waits until it answers, and creates the
bucket ``scoutframe-test``. Nothing leaves the machine. ``stop()`` ends that process only.

Credentials are made up for each server (moto accepts any); the secret key is long and
distinctive so that the leak tests can look for it in every file, log line and repr.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from typing import Any

BUCKET = "scoutframe-test"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class S3Server:
    """moto's S3 on ``http://127.0.0.1:<port>`` (a context manager)."""

    def __init__(self, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_key = "AKIA" + secrets.token_hex(8).upper()
        # Not hex-only and not shaped like any credential the redaction helper knows: a
        # leak test that finds it found the value itself.
        self.secret_key = "sEcReT-" + secrets.token_urlsafe(24).replace("-", "x")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def storage_options(self) -> dict[str, str]:
        """The options a user would pass (object_store spelling)."""
        return {
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            "aws_endpoint_url": self.url,
            "aws_region": "us-east-1",
        }

    def env(self) -> dict[str, str]:
        """The environment variables a shell user (or a child process) would set."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.url,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}", *parts])

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )

    def start(self) -> S3Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.1)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key under ``prefix`` (all pages)."""
        found: list[str] = []
        pages = self.client().get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    def read(self, key: str) -> bytes:
        return bytes(self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
