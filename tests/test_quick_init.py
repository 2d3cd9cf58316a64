"""quick_init (nmail/quick_init.py): the same values as the dataclass's own __init__."""

from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field

import pytest

from nmail.delivery.envelope import ClientInfo, Envelope
from nmail.mailstore.model import NewMessage, StoredMessage
from nmail.quick_init import quick_init


@dataclass(frozen=True, slots=True)
class Plain:
    a: int
    b: str = "b"
    c: tuple[int, ...] = field(default_factory=tuple)
    d: list[int] = field(default_factory=list)
    e: int = field(default=5, kw_only=True)


@quick_init
@dataclass(frozen=True, slots=True)
class Quick:
    a: int
    b: str = "b"
    c: tuple[int, ...] = field(default_factory=tuple)
    d: list[int] = field(default_factory=list)
    e: int = field(default=5, kw_only=True)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, "x"), {}), ((1, "x", (2,), [3]), {"e": 9}), ((), {"a": 2, "d": [1]})],
)
def test_the_same_objects_as_the_dataclass_init(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    plain, quick = Plain(*args, **kwargs), Quick(*args, **kwargs)  # type: ignore[arg-type]
    assert repr(quick).replace("Quick", "Plain") == repr(plain)
    assert dataclasses.astuple(quick) == dataclasses.astuple(plain)
    assert Quick(*args, **kwargs) == quick  # type: ignore[arg-type]
    assert quick.d is not Quick(1).d  # a fresh list each time, as default_factory


def test_still_frozen_and_replaceable_and_picklable() -> None:
    info = ClientInfo(ip="192.0.2.1", helo="c.test")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.ip = "x"  # type: ignore[misc]
    assert dataclasses.replace(info, helo="d.test") == ClientInfo("192.0.2.1", "d.test")
    envelope = Envelope("a@example.org", ())
    assert envelope.client == ClientInfo() and envelope.dot_lines is None
    assert pickle.loads(pickle.dumps(envelope)) == envelope
    stored = StoredMessage(1, 2, 3, 4, "u", "/f")
    assert hash(stored) == hash(StoredMessage(1, 2, 3, 4, "u", "/f"))
    with pytest.raises(TypeError):
        NewMessage()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        StoredMessage(1, 2, 3, 4, "u", "/f", 7)  # type: ignore[call-arg]


def test_only_frozen_slots_dataclasses() -> None:
    @dataclass(slots=True)
    class Open:
        a: int

    with pytest.raises(TypeError):
        quick_init(Open)
