"""lgmp.frozen.set_directly: a cheaper __init__ that behaves as the generated one."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from lgmp.frozen import set_directly


@set_directly
@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 7

    def __post_init__(self) -> None:
        if self.x < 0:
            raise ValueError("x must not be negative")


def test_same_signature_defaults_and_keywords():
    assert Point(1) == Point(x=1, y=7) == Point(1, 7)
    assert Point(y=2, x=3).y == 2
    with pytest.raises(TypeError):
        Point()
    with pytest.raises(TypeError):
        Point(1, 2, 3)


def test_checks_still_run_and_instances_stay_frozen():
    with pytest.raises(ValueError, match="negative"):
        Point(-1)
    point = Point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2
    assert hash(point) == hash(Point(1)) and point != Point(2)
    assert dataclasses.replace(point, y=3) == Point(1, 3)
    assert pickle.loads(pickle.dumps(point)) == point


def test_a_default_factory_is_refused():
    @dataclasses.dataclass(frozen=True, slots=True)
    class Bag:
        items: list = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="default factory"):
        set_directly(Bag)
