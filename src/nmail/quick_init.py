"""A cheaper __init__ for a frozen slots dataclass built once per message.

A frozen dataclass's __init__ sets each field through object.__setattr__
(its own __setattr__ refuses): ~1.3k instructions a field against ~0.1k
for a plain one (callgrind, Python 3.11), and a port-25 worker builds
several such values per message (Envelope, NewMessage, StoredMessage, ...).
`quick_init` gives the class an __init__ with the same signature that sets
each slot through its descriptor's setter, taken once here: about half the
cost. Everything else stays the dataclass's: eq, hash, repr, replace, and
assignment refused (FrozenInstanceError).
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")
_UNSET: Any = object()  # a field with a default_factory was not given


def quick_init(cls: type[T]) -> type[T]:
    """Replace the __init__ of frozen slots dataclass `cls` (apply above @dataclass)."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: quick_init takes a frozen slots dataclass")
    names: dict[str, Any] = {}
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    names["_unset"] = _UNSET
    for number, f in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: quick_init takes init fields only")
        names[f"_set{number}"] = cls.__dict__[f.name].__set__
        param, value = f.name, f.name
        if f.default is not dataclasses.MISSING:
            names[f"_default{number}"] = f.default
            param += f"=_default{number}"
        elif f.default_factory is not dataclasses.MISSING:
            names[f"_factory{number}"] = f.default_factory
            param += "=_unset"
            value = f"_factory{number}() if {f.name} is _unset else {f.name}"
        (keyword if f.kw_only else positional).append(param)
        body.append(f"    _set{number}(self, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    signature = ", ".join(["self", *positional, *(["*", *keyword] if keyword else [])])
    source = f"def __init__({signature}):\n" + "\n".join(body or ["    pass"]) + "\n"
    exec(source, names)  # noqa: S102 (text made here from the field names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    setattr(cls, "__init__", init)  # noqa: B010 (mypy: a method is not assigned to)
    return cls
