"""The dialects of LGMP this project speaks, by the name a command line gives them."""

from __future__ import annotations

from .codec import V1_0, Dialect
from .unity2022 import UNITY_2022

#: By name: ``v1.0`` (the default everywhere) and ``unity-2022`` (the game's Unity client).
DIALECTS: dict[str, Dialect] = {d.name: d for d in (V1_0, UNITY_2022)}


def dialect_named(name: str | Dialect) -> Dialect:
    """The dialect called ``name`` (a Dialect is returned as it is); ``ValueError`` names the known ones."""
    if isinstance(name, Dialect):
        return name
    try:
        return DIALECTS[name]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: one of {', '.join(DIALECTS)}") from None
