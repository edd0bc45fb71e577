"""The form's choices as a runnable ``pd.read_spherescout(...)`` call.

Names are written where the user picked names (a category, a region, a city), but only when
the name alone leads back to the same id (``Filters.resolve`` is asked, through the client's
cached reference lists: free); an ambiguous name is written as its id, the name in a comment.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..api.filters import Filters
from ..errors import ScoutError

if TYPE_CHECKING:
    from ..api.client import Client
    from .state import FormState, Place

__all__ = ["Argument", "filter_arguments", "render_call"]


@dataclass(frozen=True)
class Argument:
    """One keyword argument of the call: its name, value and an optional comment."""

    name: str
    value: Any
    comment: str = ""


class _Name:
    """A bare name in the generated code (``client``), not a literal."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


def filter_arguments(state: FormState, client: Client) -> list[Argument]:
    """Return the filter arguments for ``state``: names where they resolve to the same ids.

    Parameters
    ----------
    state
        The form's choices.
    client
        Used to check that each name resolves to the id picked (free, cached calls).

    Returns
    -------
    list of Argument
        In the order of :class:`~scoutframe.api.filters.Filters`' fields.
    """
    arguments: list[Argument] = []
    if state.countries:
        arguments.append(Argument("countries", _one_or_list(state.countries)))
    if state.category:
        arguments.append(_category(state.category, client))
    if state.place is not None:
        arguments.append(_place(state.place, state.countries, client))
    arguments.extend(Argument(name, value) for name, value in state.toggles)
    return arguments


def _one_or_list(values: Sequence[Any]) -> Any:
    return values[0] if len(values) == 1 else list(values)


def _category(text: str, client: Client) -> Argument:
    """Name the category by its canonical name when that name leads back to the same id."""
    try:
        ids = Filters.from_any(category=text).resolve(client).category
        table = client.categories()
        names = {int(i): str(n) for i, n in zip(table["id"], table["name"], strict=True)}
        if len(ids) != 1 or not isinstance(ids[0], int) or ids[0] not in names:
            return Argument("category", text)
        cid = ids[0]
        if Filters.from_any(category=names[cid]).resolve(client).category == (cid,):
            return Argument("category", names[cid])
        return Argument("category", cid, f"# {_comment(names[cid])}")
    except ScoutError:  # unknown or unreachable: as typed, and the read will say why
        return Argument("category", text)


def _place(place: Place, countries: tuple[str, ...], client: Client) -> Argument:
    """Name the place when its name, searched in the chosen countries, finds this place."""
    try:
        found = Filters.from_any(countries=countries, **{place.field: place.name}).resolve(client)
        if getattr(found, place.field) == (place.id,):
            return Argument(place.field, place.name)
        why = "its name leads to another place"
    except ScoutError:
        why = "its name alone is ambiguous"
    return Argument(place.field, place.id, f"# {_comment(place.name)} ({why})")


def _comment(text: str) -> str:
    return " ".join(text.split())


def render_call(
    arguments: Sequence[Argument],
    *,
    method: str,
    max_credits: int | None,
    progress: bool | None = None,
    target: str = "df",
) -> str:
    """Write ``target = pd.read_spherescout(...)`` with one keyword a line.

    Parameters
    ----------
    arguments
        The filter arguments (:func:`filter_arguments`).
    method
        ``"pages"`` or ``"export"``.
    max_credits
        The budget, left out when ``None``.
    progress
        Written when not ``None``.
    target
        The variable assigned.

    Returns
    -------
    str
        Valid Python; it expects ``pd`` (with ``scoutframe`` imported) and ``client``.
    """
    every = [*arguments, Argument("method", method)]
    if max_credits is not None:
        every.append(Argument("max_credits", max_credits))
    if progress is not None:
        every.append(Argument("progress", progress))
    every.append(Argument("client", _Name("client")))
    lines = [f"{target} = pd.read_spherescout("]
    for argument in every:
        line = f"    {argument.name}={argument.value!r},"
        if argument.comment:
            line += f"  {argument.comment}"
        lines.append(line)
    lines.append(")")
    return "\n".join(lines) + "\n"
