"""lgmp.rooms.names: username shapes, profanity (with leetspeak) and room codes."""

from __future__ import annotations

import random

import pytest

from lgmp.rooms.names import check_name_shape, is_profane, is_valid_room_code, new_room_code, normalize_room_code
from lgmp.wire.packets import ReadyAnswer


@pytest.mark.parametrize(
    "name,answer",
    [
        ("", ReadyAnswer.EMPTY_NAME),
        ("A" * 13, ReadyAnswer.NAME_TOO_LONG),
        ("A" * 12, ReadyAnswer.ACCEPTED),
        ("Ann Lee", ReadyAnswer.INVALID_CHARACTERS),
        ("Ann!", ReadyAnswer.INVALID_CHARACTERS),
        ("J\udcc3\udca9", ReadyAnswer.INVALID_CHARACTERS),  # non-ASCII bytes from the wire
        ("[Ann]99", ReadyAnswer.ACCEPTED),
    ],
)
def test_name_shape(name, answer):
    assert check_name_shape(name) is answer


@pytest.mark.parametrize("name", ["shit", "SH1T", "Fuck", "cunt"])
def test_profanity_includes_leetspeak(name):
    assert is_profane(name)


@pytest.mark.parametrize("name", ["Ann", "Scunthorpe", "Bot3", "Assassin"])
def test_clean_names_pass(name):
    assert not is_profane(name)


@pytest.mark.parametrize("code", ["HOST", "KKKK", "NIGA", "FUCK", "XCUM", "ABC", "ABCDE", "AB1D", "abcd"])
def test_refused_room_codes(code):
    assert not is_valid_room_code(code)


def test_new_codes_are_valid_unique_and_reproducible():
    taken: set[str] = set()
    rng = random.Random(4)
    for _ in range(2000):
        code = new_room_code(rng, taken)
        assert is_valid_room_code(code) and code not in taken
        taken.add(code)
    assert new_room_code(random.Random(9), set()) == new_room_code(random.Random(9), set())


def test_codes_match_case_insensitively():
    assert normalize_room_code("qzkw") == "QZKW"
