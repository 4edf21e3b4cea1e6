"""lgmp.rooms.names: username shapes, profanity (with leetspeak) and room codes."""

from __future__ import annotations

import random
import string

import pytest

from better_profanity import profanity

from lgmp.rooms import names
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


# --- the cheaper checks give the library's answers --------------------------------------

_NAME_ALPHABET = string.ascii_letters + string.digits + "[]"


def _names_to_try(rng: random.Random) -> list[str]:
    """Random names, and every listed word that fits a name, respelt the ways the
    library knows (leetspeak, case), some split by brackets or inside other letters."""
    tried = ["".join(rng.choice(_NAME_ALPHABET) for _ in range(rng.randint(1, 12))) for _ in range(600)]
    for word in profanity.CENSOR_WORDSET:
        text = str(word)
        if not text.isalnum() or len(text) > 12:
            continue
        spelt = "".join(rng.choice([c for c in combo if c in _NAME_ALPHABET.lower()] or [c]) for c, combo in zip(text, word._char_combos))
        spelt = "".join(c.upper() if rng.random() < 0.3 else c for c in spelt)
        cut = rng.randint(0, len(spelt))
        tried += [spelt, spelt[:cut] + "[" + spelt[cut:], ("X" + spelt + "9")[:12], ("[" + spelt + "]")[:12]]
    return [name for name in tried if check_name_shape(name) is ReadyAnswer.ACCEPTED]


def test_the_name_screen_gives_the_librarys_answers():
    tried = _names_to_try(random.Random(19))
    assert len(tried) > 1500
    answers = [is_profane(name) for name in tried]
    assert answers == [profanity.contains_profanity(name) for name in tried]
    assert 100 < sum(answers) < len(answers) - 100  # both answers were given, many times


def test_room_codes_are_refused_exactly_as_the_lists_say():
    rng = random.Random(5)
    drawn = {"".join(rng.choice(string.ascii_uppercase) for _ in range(4)) for _ in range(2500)}
    refused = sorted(names._OFFENSIVE_CODES)
    for code in sorted(drawn) + refused[:: max(1, len(refused) // 400)] + ["KKKK", "NIGA", "FUCK", "XCUM", "SHIT"]:
        assert names.is_offensive_code(code) == names._is_offensive_code_slowly(code), code
