"""Where the client's settings come from: arguments, environment, config file, keyring.

Precedence, highest first: explicit arguments, the environment (``SPHERESCOUT_API_KEY``,
``SPHERESCOUT_BASE_URL``, ``SPHERESCOUT_USERNAME``, ``SPHERESCOUT_PASSWORD``), a TOML file
(``config.toml`` in the platform's user config directory, or ``SPHERESCOUT_CONFIG``), then the
system keyring (service ``"scoutframe"``), when the optional ``keyring`` package is installed.

Credentials are taken as a unit from the first source that has any: an API key given as an
argument wins over a username in the environment, and vice versa. A password missing from
that source may come from a later one (for the same username), e.g. the keyring.

The config file holds secrets, so it is refused when group or others may read it.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .._redact import redact
from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_BASE_URL",
    "KEYRING_SERVICE",
    "Settings",
    "default_config_file",
    "load_settings",
    "read_config_file",
]

DEFAULT_BASE_URL = "https://www.spherescout.io"
KEYRING_SERVICE = "scoutframe"
ENV_API_KEY = "SPHERESCOUT_API_KEY"
ENV_BASE_URL = "SPHERESCOUT_BASE_URL"
ENV_USERNAME = "SPHERESCOUT_USERNAME"
ENV_PASSWORD = "SPHERESCOUT_PASSWORD"  # noqa: S105 - a variable name, not a password
ENV_CONFIG = "SPHERESCOUT_CONFIG"
#: The default budget of every read and export (credits), when no ``max_credits=`` is given.
ENV_MAX_CREDITS = "SCOUTFRAME_MAX_CREDITS"
_FILE_KEYS = frozenset({"api_key", "base_url", "username", "password"})

KeyringGetter = Callable[[str, str], str | None]


@dataclass(frozen=True)
class Settings:
    """Resolved client settings; ``repr`` never shows the credentials.

    Attributes
    ----------
    base_url
        API origin, without a trailing slash.
    api_key, username, password
        The credential: an API key, or a username and (maybe) a password.
    sources
        Where each setting came from (``"argument"``, ``"environment"``, a file path,
        ``"keyring"``, ``"default"``), for error messages and ``Client.__repr__``.
    max_credits
        The default budget of reads and exports (``None``: spend only when asked to).
    config_file
        The config file that was (or would have been) read, for messages.
    """

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sources: Mapping[str, str] = field(default_factory=dict)
    max_credits: int | None = None
    config_file: Path | None = None

    @property
    def auth_kind(self) -> str:
        """``"api_key"``, ``"password"`` or ``"none"``."""
        if self.api_key:
            return "api_key"
        if self.username:
            return "password"
        return "none"

    def secrets(self) -> tuple[str, ...]:
        """Return the secret values held, for :func:`scoutframe._redact.redact`."""
        return tuple(s for s in (self.api_key, self.password) if s)


def default_config_file() -> Path:
    """Return ``config.toml`` in the platform's user config directory for scoutframe."""
    import platformdirs

    return Path(platformdirs.user_config_dir("scoutframe")) / "config.toml"


def read_config_file(path: Path) -> dict[str, str]:
    """Read the TOML config file; ``{}`` when it does not exist.

    Top-level keys ``api_key``, ``base_url``, ``username``, ``password`` (strings) and
    ``max_credits`` (a whole number) are read, also when they sit in a ``[spherescout]``
    table. Other keys are ignored.

    Raises
    ------
    ConfigurationError
        When group or others may read the file (it may hold a key), or it is not valid TOML.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the config file {path}: {exc.strerror}") from None
    if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"Refusing to read {path}: it may hold credentials but group or others can access it "
            f"(mode {stat.S_IMODE(info.st_mode):o}). Run: chmod 600 {path}"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        # The parser's message may quote a line holding a secret: it is not repeated.
        raise ConfigurationError(
            f"The config file {path} is not valid TOML; fix or delete it"
        ) from None
    table: Any = data.get("spherescout", data)
    if not isinstance(table, Mapping):
        return {}
    out: dict[str, str] = {}
    for key in _FILE_KEYS:
        value = table.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ConfigurationError(
                f"{key} in the config file {path} must be a string, not {type(value).__name__}"
            )
        if value:
            out[key] = value
    budget = table.get("max_credits")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ConfigurationError(
                f"max_credits in the config file {path} must be a whole number >= 0, not {budget!r}"
            )
        out["max_credits"] = str(budget)
    return out


def _keyring_get(service: str, name: str) -> str | None:
    """Look a secret up in the system keyring; ``None`` when keyring is absent or fails."""
    try:
        import keyring
    except ImportError:
        return None
    try:
        value = keyring.get_password(service, name)
    except Exception:  # any backend failure just means "not there"
        return None
    return value if isinstance(value, str) and value else None


def load_settings(
    api_key: str | None = None,
    base_url: str | None = None,
    *,
    username: str | None = None,
    password: str | None = None,
    max_credits: int | None = None,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    keyring_get: KeyringGetter | None = _keyring_get,
) -> Settings:
    """Resolve the settings from arguments, environment, config file and keyring.

    Parameters
    ----------
    api_key, base_url, username, password
        Explicit arguments; they win over everything else.
    max_credits
        The default budget of reads and exports; else ``SCOUTFRAME_MAX_CREDITS``, else the
        file's ``max_credits``, else none.
    config_file
        The TOML file to read; default: ``SPHERESCOUT_CONFIG`` or :func:`default_config_file`.
    environ
        The environment (default ``os.environ``).
    keyring_get
        ``(service, name) -> secret or None``; ``None`` disables the keyring.

    Returns
    -------
    Settings
        The resolved settings (credentials may be absent: the public endpoint needs none).

    Raises
    ------
    ConfigurationError
        On a wrongly typed argument, an unsafe or malformed config file, a password with
        no username, or credentials inside ``base_url``.
    """
    env = os.environ if environ is None else environ
    for name, value in (
        ("api_key", api_key),
        ("base_url", base_url),
        ("username", username),
        ("password", password),
    ):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{name} must be a string, not {type(value).__name__}")
    path = config_file
    if path is None:
        path = Path(env[ENV_CONFIG]) if env.get(ENV_CONFIG) else default_config_file()
    file_values = read_config_file(Path(path))
    layers: list[tuple[str, dict[str, str]]] = [
        (
            "argument",
            _clean(
                {
                    "api_key": api_key,
                    "base_url": base_url,
                    "username": username,
                    "password": password,
                }
            ),
        ),
        (
            "environment",
            _clean(
                {
                    "api_key": env.get(ENV_API_KEY),
                    "base_url": env.get(ENV_BASE_URL),
                    "username": env.get(ENV_USERNAME),
                    "password": env.get(ENV_PASSWORD),
                }
            ),
        ),
        (str(path), file_values),
    ]
    sources: dict[str, str] = {}

    resolved_url = DEFAULT_BASE_URL
    sources["base_url"] = "default"
    for source, values in layers:
        if "base_url" in values:
            resolved_url, sources["base_url"] = values["base_url"], source
            break

    refuse_userinfo(resolved_url, sources["base_url"])

    key: str | None = None
    user: str | None = None
    secret: str | None = None
    for index, (source, values) in enumerate(layers):
        if "api_key" in values:
            key, sources["api_key"] = values["api_key"], source
            break
        if "username" in values:
            user, sources["username"] = values["username"], source
            for later_source, later in layers[index:]:
                if "password" in later and (
                    "username" not in later or later is values or later["username"] == user
                ):
                    secret, sources["password"] = later["password"], later_source
                    break
            break
        if "password" in values:
            raise ConfigurationError(
                f"A password was given ({source}) without a username; pass username= as well "
                f"(or set {ENV_USERNAME})"
            )
    if key is None and user is None and keyring_get is not None:
        key = keyring_get(KEYRING_SERVICE, "api_key")
        if key:
            sources["api_key"] = "keyring"
    if user is not None and secret is None and keyring_get is not None:
        secret = keyring_get(KEYRING_SERVICE, user)
        if secret:
            sources["password"] = "keyring"  # noqa: S105 - a source name
    budget = _budget(max_credits, env.get(ENV_MAX_CREDITS), file_values.get("max_credits"), sources)
    return Settings(
        base_url=resolved_url.strip().rstrip("/"),
        api_key=key.strip() if key else None,
        username=user,
        password=secret,
        sources=sources,
        max_credits=budget,
        config_file=Path(path),
    )


def _budget(
    argument: int | None, environment: str | None, file: str | None, sources: dict[str, str]
) -> int | None:
    """Pick the default budget: the argument, else ``SCOUTFRAME_MAX_CREDITS``, else the file."""
    from ..checks import whole_number

    if argument is not None:
        sources["max_credits"] = "argument"
        return whole_number("max_credits", argument, minimum=0)
    if environment is not None and environment.strip():
        sources["max_credits"] = "environment"
        text = environment.strip().replace("_", "").replace(",", "")
        if not text.isdigit():
            raise ConfigurationError(
                f"{ENV_MAX_CREDITS} must be a whole number of credits (e.g. 5000), not "
                f"{environment!r}"
            )
        return int(text)
    if file is not None:
        sources["max_credits"] = "config file"
        return int(file)
    return None


def refuse_userinfo(url: str, source: str) -> None:
    """Refuse ``user:password@`` in ``base_url``: it would show in reprs, errors and metadata."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return  # malformed: the transport reports it, without the URL's credentials
    if "@" not in parts.netloc:
        return
    host = parts.netloc.rsplit("@", 1)[-1]
    where = f"{parts.scheme}://{host}" if parts.scheme else host
    raise ConfigurationError(
        f"base_url (from {source}) holds a user name or password before the host; give the "
        f"origin alone ({where!r}) and pass the credential apart: Client(api_key=...) or "
        "Client(username=..., password=...), or set SPHERESCOUT_API_KEY, or "
        "SPHERESCOUT_USERNAME and SPHERESCOUT_PASSWORD"
    )


def _clean(values: Mapping[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v}


def describe(settings: Settings) -> str:
    """One redacted line saying which credential is used and where it came from."""
    kind = settings.auth_kind
    if kind == "api_key":
        text = f"API key from {settings.sources.get('api_key', '?')}"
    elif kind == "password":
        text = f"user {settings.username!r} from {settings.sources.get('username', '?')}"
    else:
        text = "no credential"
    return redact(text, settings.secrets())
