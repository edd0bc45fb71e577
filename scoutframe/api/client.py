"""The SphereScout API client: configuration, auth, endpoint groups."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pandas as pd

from .. import checks
from .._redact import redact
from ..errors import ConfigurationError, FilterError, NotFoundError
from ..models import Profile, SearchPage, ServerFlavor
from .auth import ApiKeyAuth, JWTAuth, OriginAuth
from .config import Settings, describe, load_settings
from .endpoints.reference import fetch_categories, fetch_countries, fetch_professions
from .filters import Filters
from .retry import RetryPolicy
from .transport import Timeout, Transport

# The one import circle left, and only for annotations: each endpoint group holds its Client
# (endpoints -> client under TYPE_CHECKING) and the Client builds the groups on first use
# (client -> endpoints inside the properties below), so nothing is imported in a circle at
# run time (tests/unit/test_layers.py checks it).
if TYPE_CHECKING:
    from .endpoints.account import ApiKeys
    from .endpoints.exports import Exports
    from .endpoints.history import History
    from .endpoints.locations import Locations
    from .jobs import ExportJob
    from .jobstore import JobStore

__all__ = ["Client"]


class Client:
    """A client of the SphereScout REST API.

    With no arguments it configures itself from the environment (``SPHERESCOUT_API_KEY``,
    ``SPHERESCOUT_BASE_URL``, ``SPHERESCOUT_USERNAME``/``SPHERESCOUT_PASSWORD``), then the
    config file (``config.toml`` in the user config directory, readable by you only), then the
    system keyring (service ``"scoutframe"``).

    Parameters
    ----------
    api_key
        An API key; sent only to the API origin.
    base_url
        The API origin; default ``https://www.spherescout.io``.
    username, password
        Log in with JWTs instead of an API key (``username`` is the account email).
    timeout
        ``(connect, read)`` timeout in seconds for every request.
    max_retries
        Retries of a free request (connection errors, 429, 5xx).
    poll_interval
        Bounds (seconds) of the export poll backoff.
    allow_http
        Allow plain ``http://`` to hosts other than loopback (unsafe).
    state_dir
        Where export job handles are kept (default: the user state directory).
    config_file
        The TOML config file to read instead of the default one.
    backoff_factor
        Base delay (seconds) of the retry backoff.
    retry_after_cap
        Longest ``Retry-After`` (seconds) to wait for before raising ``RateLimitError``.
    max_credits
        The default budget of every read and export: a read may spend up to this many
        credits without its own ``max_credits=``. Default: ``SCOUTFRAME_MAX_CREDITS``, else
        ``max_credits`` in the config file, else none (reads spend only with
        ``method="export"`` or a ``max_credits=`` of their own).

    Examples
    --------
    >>> import scoutframe
    >>> with scoutframe.Client() as client:  # doctest: +SKIP
    ...     page = client.search(countries="FR", category="Plumber", email=True)
    ...     page.total_count
    1842
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        timeout: Timeout = (5.0, 60.0),
        max_retries: int = 5,
        poll_interval: tuple[float, float] = (2.0, 5.0),
        allow_http: bool = False,
        state_dir: Path | str | None = None,
        config_file: Path | str | None = None,
        backoff_factor: float = 0.5,
        retry_after_cap: float = 60.0,
        max_credits: int | None = None,
    ) -> None:
        settings = load_settings(
            api_key,
            base_url,
            username=username,
            password=password,
            max_credits=max_credits,
            config_file=Path(config_file) if config_file is not None else None,
        )
        self.retry = RetryPolicy(
            max_retries=checks.whole_number("max_retries", max_retries, minimum=0),
            backoff_factor=checks.positive_number("backoff_factor", backoff_factor),
            retry_after_cap=checks.positive_number("retry_after_cap", retry_after_cap),
            poll_interval=_poll_bounds(poll_interval),
        )
        self._settings: Settings = settings
        #: The default budget of reads and exports (``None``: spend only when asked).
        self.max_credits: int | None = settings.max_credits
        auth: OriginAuth | None = None
        if settings.api_key:
            auth = ApiKeyAuth(settings.api_key, settings.base_url)
        elif settings.username:
            auth = JWTAuth(settings.username, settings.password, settings.base_url)
        self.transport = Transport(
            settings.base_url,
            auth=auth,
            timeout=timeout,
            retry=self.retry,
            allow_http=allow_http,
            secrets=settings.secrets(),
            missing_credential=None if auth is not None else _no_credential(settings),
        )
        self.base_url = self.transport.base_url
        self.poll_interval = self.retry.poll_interval
        if state_dir is None:
            import platformdirs

            state_dir = platformdirs.user_state_dir("scoutframe")
        self.state_dir = Path(state_dir)
        self._flavor: ServerFlavor = "unknown"
        self._account: str | None = None
        self._reference: dict[str, pd.DataFrame] = {}
        self._absent: dict[str, NotFoundError] = {}
        self._lock = threading.Lock()

    # -- plumbing ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        text = f"<scoutframe.Client {self.base_url} ({describe(self._settings)})>"
        return redact(text, self._settings.secrets())

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP sessions."""
        self.transport.close()

    @property
    def flavor(self) -> ServerFlavor:
        """Which API flavour the server has shown so far: ``"docs"``, ``"live"``, ``"unknown"``."""
        return self._flavor

    def _set_flavor(self, flavor: ServerFlavor) -> None:
        if flavor != "unknown":
            self._flavor = flavor

    @property
    def auth_scheme(self) -> str | None:
        """``"Bearer"`` or ``"Token"`` for an API key (the one that worked), else ``None``."""
        auth = self.transport.auth
        return auth.scheme if isinstance(auth, ApiKeyAuth) else None

    # -- endpoint groups (built on first use; the import is inside, to keep the client light)
    @functools.cached_property
    def locations(self) -> Locations:
        """Location search and browsing: ``client.locations.search("Paris")``."""
        from .endpoints.locations import Locations

        return Locations(self)

    @functools.cached_property
    def api_keys(self) -> ApiKeys:
        """The account's API keys: ``client.api_keys.list()``."""
        from .endpoints.account import ApiKeys

        return ApiKeys(self)

    @functools.cached_property
    def exports(self) -> Exports:
        """CSV exports: ``client.exports.start(filters)``."""
        from .endpoints.exports import Exports

        return Exports(self)

    @functools.cached_property
    def history(self) -> History:
        """Export history, freshness and deltas."""
        from .endpoints.history import History

        return History(self)

    @functools.cached_property
    def job_store(self) -> JobStore:
        """Saved export handles and the history, asked as one (which export is this?)."""
        from .jobstore import JobStore

        return JobStore(self)

    def export_job(self, job_id: str) -> ExportJob:
        """Return the export ``job_id`` (task id or search id) started earlier, to resume it."""
        return self.exports.resume(job_id)

    # -- account -----------------------------------------------------------------------------
    def profile(self) -> Profile:
        """Return the account profile; ``.credits`` is the remaining balance."""
        profile = Profile.from_json(self.transport.get_json("/api/user/profile"))
        if self._account is None:
            self._account = _account_of(profile)
        return profile

    @property
    def known_account(self) -> str | None:
        """The account's id if this client has asked for it already, else ``None`` (free)."""
        return self._account

    def account_id(self) -> str:
        """Return the account's id (asked once per client: one free request), never a secret.

        Cache entries are keyed by it, so two accounts never share an entry.
        """
        if self._account is None:
            self.profile()
        assert self._account is not None
        return self._account

    # -- search ------------------------------------------------------------------------------
    def search(
        self,
        filters: Filters | Mapping[str, Any] | None = None,
        /,
        *,
        page: int | None = None,
        **filter_kwargs: Any,
    ) -> SearchPage:
        """Search contacts (free): a preview of up to 10, or page ``page`` of 50.

        Parameters
        ----------
        filters
            A :class:`~scoutframe.api.filters.Filters` or a mapping; names are resolved to ids.
        page
            ``None`` for the preview; a 1-based page number for paged mode.
        **filter_kwargs
            Filters by keyword (``countries="FR"``, ``category="Plumber"``, ``email=True``).

        Returns
        -------
        SearchPage
            ``total_count``, ``search_id`` and the ``contacts`` (emails masked).

        Raises
        ------
        FilterError
            A name matches nothing, or a value has the wrong type.
        NotFoundError
            ``page`` is past the last page.
        """
        params = self._search_params(filters, filter_kwargs)
        if page is not None:
            page = checks.whole_number("page", page, minimum=1)
            params += [("paginate", "true"), ("page", str(page))]
        return SearchPage.from_json(self.transport.get_json("/api/companies", params=params))

    def public_search(
        self, filters: Filters | Mapping[str, Any] | None = None, /, **filter_kwargs: Any
    ) -> SearchPage:
        """Search without credentials (at most 10 contacts, no ``search_id``, rate-limited).

        Names cannot be resolved without credentials: pass ids and country codes.
        """
        value = Filters.from_any(filters, **filter_kwargs)
        if not value.is_resolved():
            if self.transport.auth is None:
                raise FilterError(
                    "the public search needs ids and country codes; names are resolved "
                    "through authenticated reference endpoints (give the client a key)"
                )
            value = value.resolve(self)
        response = self.transport.request(
            "GET", "/api/public/companies", params=value.to_params(), authenticate=False
        )
        return SearchPage.from_json(self.transport.json_of(response))

    def resolve(
        self, filters: Filters | Mapping[str, Any] | None = None, /, **filter_kwargs: Any
    ) -> Filters:
        """Return :class:`~scoutframe.api.filters.Filters` with every name turned into an id."""
        return Filters.from_any(filters, **filter_kwargs).resolve(self)

    def _search_params(
        self, filters: Filters | Mapping[str, Any] | None, kwargs: Mapping[str, Any]
    ) -> list[tuple[str, str]]:
        # Always resolved, ids and codes too: the live API answers an unknown code or id with
        # an empty result, the docs one with a bare 400. The reference lists are cached, so this
        # costs one request per list per client.
        return Filters.from_any(filters, **kwargs).resolve(self).to_params()

    # -- reference data ----------------------------------------------------------------------
    def _cached(self, key: str, fetch: Any) -> pd.DataFrame:
        absent = self._absent.get(key)
        if absent is not None:  # the server has no such list: do not ask on every search
            raise absent.with_traceback(None)
        frame = self._reference.get(key)
        if frame is None:
            try:
                frame = fetch()
            except NotFoundError as exc:
                with self._lock:
                    self._absent.setdefault(key, exc)
                raise
            with self._lock:
                self._reference.setdefault(key, frame)
        return frame.copy()

    def categories(self, q: str | None = None, *, limit: int | None = None) -> pd.DataFrame:
        """Return the business categories: ``id`` (Int64), ``name``, ``gcid``.

        Parameters
        ----------
        q
            Text to match; the best matches come first, with ``match_rank``,
            ``matched_field`` and ``matched_value`` columns.
        limit
            At most this many rows (with ``q``).

        Returns
        -------
        pandas.DataFrame
            One row per category. The full list is cached on the client.
        """
        if q is not None and not isinstance(q, str):
            raise FilterError(f"q must be a string, not {type(q).__name__}")
        limit = checks.optional_whole_number("limit", limit, minimum=1)
        if q is None and limit is None:
            return self._cached("categories", lambda: fetch_categories(self.transport))
        return fetch_categories(self.transport, q, limit)

    def countries(self) -> pd.DataFrame:
        """Countries with contacts: ``code`` (ISO alpha-2) and ``name``; cached on the client."""
        return self._cached("countries", lambda: fetch_countries(self.transport))

    def professions(self, countries: str | Iterable[str] | None = None) -> pd.DataFrame:
        """Categories grouped into professions, with contact counts (one row per category).

        Parameters
        ----------
        countries
            Count only contacts in these countries (ISO codes).

        Returns
        -------
        pandas.DataFrame
            Columns ``profession``, ``category_id``, ``category_name``, ``count`` and
            ``profession_count``.
        """
        codes = Filters.from_any(countries=countries).countries
        return self._cached(
            f"professions:{','.join(codes)}", lambda: fetch_professions(self.transport, codes)
        )


def _poll_bounds(value: Any) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"poll_interval must be a (min, max) pair of seconds, not {value!r}"
        ) from None
    if not 0 < low <= high:
        raise ConfigurationError(f"poll_interval needs 0 < min <= max, not {value!r}")
    return low, high


def _no_credential(settings: Settings) -> str:
    """Say what to do when an authenticated request is made without any credential."""
    where = settings.config_file or "config.toml in the user config directory"
    return (
        "No SphereScout credential is configured, so this request was not sent. Set "
        "SPHERESCOUT_API_KEY (or SPHERESCOUT_USERNAME and SPHERESCOUT_PASSWORD), pass "
        f"Client(api_key=...), put api_key in {where}, or store it in the keyring (service "
        "'scoutframe'). To try scoutframe without a key, run `scoutframe sandbox` and use "
        "the variables it prints"
    )


def _account_of(profile: Profile) -> str:
    """Return the account's stable id: its numeric id, else its e-mail address."""
    if profile.id is not None:
        return str(profile.id)
    return str(profile.email or profile.username or "unknown")
