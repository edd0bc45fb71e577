"""Configuration sources, precedence and the config file's permission check."""

from __future__ import annotations

from pathlib import Path

import pytest

from scoutframe.api.config import DEFAULT_BASE_URL, describe, load_settings, read_config_file
from scoutframe.errors import ArgumentError, ConfigurationError


def write_config(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def no_keyring(service: str, name: str) -> None:
    return None


def test_defaults_without_any_source(tmp_path):
    settings = load_settings(config_file=tmp_path / "none.toml", environ={}, keyring_get=None)
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.auth_kind == "none"
    assert settings.sources["base_url"] == "default"


def test_arguments_beat_environment_beat_file(tmp_path):
    config = write_config(
        tmp_path / "c.toml", 'api_key = "file-key"\nbase_url = "https://file.example"\n'
    )
    env = {"SPHERESCOUT_API_KEY": "env-key", "SPHERESCOUT_BASE_URL": "https://env.example/"}
    only_file = load_settings(config_file=config, environ={}, keyring_get=no_keyring)
    assert (only_file.api_key, only_file.base_url) == ("file-key", "https://file.example")
    assert only_file.sources["api_key"] == str(config)
    from_env = load_settings(config_file=config, environ=env, keyring_get=no_keyring)
    assert (from_env.api_key, from_env.base_url) == ("env-key", "https://env.example")
    assert from_env.sources == {"api_key": "environment", "base_url": "environment"}
    from_args = load_settings(
        "arg-key", "https://arg.example", config_file=config, environ=env, keyring_get=no_keyring
    )
    assert (from_args.api_key, from_args.base_url) == ("arg-key", "https://arg.example")


def test_credentials_come_as_a_unit_from_the_first_source_that_has_one(tmp_path):
    env = {"SPHERESCOUT_API_KEY": "env-key"}
    settings = load_settings(
        username="me@x.io",
        password="pw",
        environ=env,
        config_file=tmp_path / "n.toml",
        keyring_get=no_keyring,
    )
    assert settings.auth_kind == "password"
    assert settings.api_key is None
    env = {"SPHERESCOUT_USERNAME": "me@x.io", "SPHERESCOUT_PASSWORD": "pw"}
    settings = load_settings(
        "arg-key", environ=env, config_file=tmp_path / "n.toml", keyring_get=no_keyring
    )
    assert settings.auth_kind == "api_key"
    assert settings.username is None
    assert settings.password is None


def test_password_may_come_from_a_later_source_for_the_same_user(tmp_path):
    config = write_config(tmp_path / "c.toml", 'username = "me@x.io"\npassword = "file-pw"\n')
    settings = load_settings(
        environ={"SPHERESCOUT_USERNAME": "me@x.io"}, config_file=config, keyring_get=no_keyring
    )
    assert settings.password == "file-pw"
    assert settings.sources["password"] == str(config)
    other = load_settings(
        environ={"SPHERESCOUT_USERNAME": "other@x.io"}, config_file=config, keyring_get=no_keyring
    )
    assert other.password is None


def test_keyring_is_the_last_resort(tmp_path):
    asked: list[tuple[str, str]] = []

    def keyring(service: str, name: str) -> str | None:
        asked.append((service, name))
        return {"api_key": "ring-key", "me@x.io": "ring-pw"}.get(name)

    by_key = load_settings(environ={}, config_file=tmp_path / "n.toml", keyring_get=keyring)
    assert by_key.api_key == "ring-key"
    assert by_key.sources["api_key"] == "keyring"
    assert asked == [("scoutframe", "api_key")]
    by_user = load_settings(
        username="me@x.io", environ={}, config_file=tmp_path / "n.toml", keyring_get=keyring
    )
    assert by_user.password == "ring-pw"
    asked.clear()
    load_settings("arg-key", environ={}, config_file=tmp_path / "n.toml", keyring_get=keyring)
    assert asked == []


def test_absent_or_broken_keyring_is_fine(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "keyring":
            raise ImportError("no keyring")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    settings = load_settings(environ={}, config_file=tmp_path / "n.toml")
    assert settings.auth_kind == "none"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_config_file_readable_by_others_is_refused(tmp_path, mode):
    config = write_config(tmp_path / "c.toml", 'api_key = "file-key-123456"\n', mode)
    with pytest.raises(ConfigurationError, match="chmod 600") as caught:
        read_config_file(config)
    assert "file-key-123456" not in str(caught.value)
    assert f"{mode:o}" in str(caught.value)


def test_config_file_table_and_errors(tmp_path):
    tabled = write_config(tmp_path / "t.toml", '[spherescout]\nbase_url = "https://t.example"\n')
    assert read_config_file(tabled) == {"base_url": "https://t.example"}
    broken = write_config(tmp_path / "b.toml", 'password = "unterminated\n')
    with pytest.raises(ConfigurationError, match="not valid TOML") as caught:
        read_config_file(broken)
    assert "unterminated" not in str(caught.value)
    typed = write_config(tmp_path / "n.toml", "api_key = 42\n")
    with pytest.raises(ConfigurationError, match="must be a string"):
        read_config_file(typed)
    assert read_config_file(tmp_path / "missing.toml") == {}


def test_config_file_path_from_environment(tmp_path):
    config = write_config(tmp_path / "c.toml", 'api_key = "file-key"\n')
    settings = load_settings(environ={"SPHERESCOUT_CONFIG": str(config)}, keyring_get=None)
    assert settings.api_key == "file-key"


def test_wrong_types_and_password_without_user(tmp_path):
    with pytest.raises(ConfigurationError, match="api_key must be a string"):
        load_settings(123, config_file=tmp_path / "n.toml", environ={})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="without a username"):
        load_settings(password="pw", config_file=tmp_path / "n.toml", environ={}, keyring_get=None)


def test_repr_and_describe_hide_secrets(tmp_path):
    settings = load_settings(
        "k" * 64, username=None, config_file=tmp_path / "n.toml", environ={}, keyring_get=None
    )
    assert "k" * 64 not in repr(settings)
    assert describe(settings) == "API key from argument"
    user = load_settings(
        username="me@x.io",
        password="s3cret-pw",
        environ={},
        config_file=tmp_path / "n.toml",
        keyring_get=None,
    )
    assert "s3cret-pw" not in repr(user)
    assert "s3cret-pw" not in describe(user)


def test_failing_keyring_backend_is_fine(tmp_path, monkeypatch):
    import keyring

    def broken(service: str, name: str) -> str:
        raise RuntimeError("no D-Bus session")

    monkeypatch.setattr(keyring, "get_password", broken)
    settings = load_settings(environ={}, config_file=tmp_path / "n.toml")
    assert settings.auth_kind == "none"
    monkeypatch.setattr(keyring, "get_password", lambda service, name: f"{service}:{name}:v")
    assert load_settings(environ={}, config_file=tmp_path / "n.toml").api_key == (
        "scoutframe:api_key:v"
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        # Whole numbers and positive numbers: the shared checks (scoutframe.checks).
        ({"max_retries": -1}, ArgumentError, "max_retries must be >= 0, not -1"),
        ({"max_retries": 2.5}, ArgumentError, r"max_retries must be a whole number .*2\.5"),
        ({"backoff_factor": 0}, ArgumentError, "backoff_factor must be a number > 0"),
        ({"retry_after_cap": "60"}, ArgumentError, "retry_after_cap must be a number > 0"),
        ({"poll_interval": (5.0, 1.0)}, ConfigurationError, "0 < min <= max"),
        ({"poll_interval": 3}, ConfigurationError, "poll_interval must be a"),
        ({"timeout": "fast"}, ConfigurationError, "timeout must be a number"),
        ({"base_url": "http://example.com"}, ConfigurationError, "allow_http=True"),
    ],
)
def test_client_options_are_checked_at_construction(tmp_path, kwargs, error, message):
    from scoutframe.api.client import Client

    with pytest.raises(error, match=message):
        Client("k" * 64, config_file=tmp_path / "n.toml", **kwargs)


def test_client_takes_settings_from_the_config_file(tmp_path):
    from scoutframe.api.client import Client

    config = write_config(
        tmp_path / "c.toml", f'api_key = "{"9" * 64}"\nbase_url = "https://api.spherescout.io/"\n'
    )
    with Client(config_file=config, state_dir=tmp_path) as client:
        assert client.base_url == "https://api.spherescout.io"
        assert client.auth_scheme == "Bearer"
        assert client.flavor == "unknown"
        assert "9" * 64 not in repr(client)
        assert str(config) in repr(client)
        assert client.state_dir == tmp_path


@pytest.mark.parametrize(
    "url",
    [
        "http://bob:hunter2@127.0.0.1:8000",
        "https://bob:hunter2@api.spherescout.io/",
        "https://:hunter2@api.spherescout.io",
    ],
)
def test_credentials_in_base_url_are_refused_without_echoing_them(tmp_path, url):
    from scoutframe.api.client import Client

    with pytest.raises(ConfigurationError) as caught:
        Client(base_url=url, config_file=tmp_path / "n.toml", state_dir=tmp_path)
    message = str(caught.value)
    assert "hunter2" not in message
    assert "api_key=" in message
    assert "password=" in message
    env = {"SPHERESCOUT_BASE_URL": url}
    with pytest.raises(ConfigurationError, match="environment") as caught:
        load_settings(environ=env, config_file=tmp_path / "n.toml", keyring_get=None)
    assert "hunter2" not in str(caught.value)


def test_user_name_alone_in_base_url_is_refused_too(tmp_path):
    with pytest.raises(ConfigurationError, match="username="):
        load_settings(
            base_url="https://bob@api.spherescout.io",
            environ={},
            config_file=tmp_path / "n.toml",
            keyring_get=None,
        )
