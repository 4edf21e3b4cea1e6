"""Frozen, slotted dataclasses that are cheaper to build."""

from __future__ import annotations

import dataclasses

__all__ = ["set_directly"]


def set_directly(cls: type) -> type:
    """Give a frozen, slotted dataclass an ``__init__`` that fills its slots through
    their descriptors, then calls ``__post_init__`` as the generated one does.

    For the values built for every packet (events, packets, decoded frames): the
    generated ``__init__`` of a frozen class goes through ``object.__setattr__`` by
    name for each field, which costs about twice as much. Same signature, same
    defaults, same checks; the instances stay frozen.
    """
    fields = dataclasses.fields(cls)
    setters = {f"_set_{f.name}": getattr(cls, f.name).__set__ for f in fields}
    defaults = {}
    params = []
    for f in fields:
        if f.default_factory is not dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{f.name}: a default factory needs the generated __init__")
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            defaults[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    body = [f"    _set_{f.name}(self, {f.name})" for f in fields]
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"]) + "\n"
    namespace: dict = {}
    exec(source, {**setters, **defaults}, namespace)  # noqa: S102 - code built from the field names above
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls
