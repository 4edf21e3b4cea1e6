"""Usernames and room codes: what a person may call themselves, and room codes to hand out.

Profanity is judged by ``better_profanity``'s maintained word list, which also
catches the leetspeak spellings of its words ("sh1t"), rather than by a regex
of our own.
"""

from __future__ import annotations

import random
import re
import string

from better_profanity import profanity

from ..wire.packets import HOST_ROOM, ReadyAnswer

NAME_MAX = 12  # the original game's name box held 12 characters
ROOM_CODE_LETTERS = string.ascii_uppercase
ROOM_CODE_LENGTH = 4

_NAME_CHARS = re.compile(r"[A-Za-z0-9\[\]]+")

profanity.load_censor_words()

# Room codes are four letters shown on a shared screen, so they are held to a
# stricter test than names: no word of the list may appear anywhere inside them
# ("KKKK" holds "kkk"). A code wrongly refused costs nothing but another draw.
_SHORT_WORDS = frozenset(
    word.upper() for word in map(str, profanity.CENSOR_WORDSET) if word.isalpha() and 3 <= len(word) <= ROOM_CODE_LENGTH
)
# Spellings the list misses that a four-letter code can form; kept to the few a
# review of generated codes turned up.
_EXTRA_CODE_WORDS = frozenset({"NIGA", "NIGR", "NIGG", "NIGS"})


def is_profane(text: str) -> bool:
    """True when ``text`` contains a word (or its leetspeak) from the profanity list."""
    return profanity.contains_profanity(text)


def check_name_shape(name: str) -> ReadyAnswer:
    """REDY answers 2-4 for ``name`` on its own: empty, too long, invalid characters.

    Returns ``ACCEPTED`` when the shape is fine. Uniqueness (5) is the room's
    business and profanity (6) is ``is_profane``: the room checks them in the
    order of the answer codes.
    """
    if not name:
        return ReadyAnswer.EMPTY_NAME
    if len(name) > NAME_MAX:
        return ReadyAnswer.NAME_TOO_LONG
    if not _NAME_CHARS.fullmatch(name):
        return ReadyAnswer.INVALID_CHARACTERS
    return ReadyAnswer.ACCEPTED


def normalize_room_code(text: str) -> str:
    """Room codes are matched case-insensitively; we keep them upper-case."""
    return text.upper()


def is_offensive_code(code: str) -> bool:
    """True when a word of the profanity list (3-4 letters) appears anywhere in ``code``."""
    if code in _EXTRA_CODE_WORDS or is_profane(code):
        return True
    return any(code[i : i + n] in _SHORT_WORDS for n in (3, 4) for i in range(len(code) - n + 1))


def is_valid_room_code(code: str) -> bool:
    return (
        len(code) == ROOM_CODE_LENGTH
        and all(c in ROOM_CODE_LETTERS for c in code)
        and code != HOST_ROOM
        and not is_offensive_code(code)
    )


def new_room_code(rng: random.Random, taken: set[str] | dict[str, object], first_letters: str = ROOM_CODE_LETTERS) -> str:
    """A fresh code: four letters A-Z, never "HOST", never offensive, not in ``taken``.

    ``first_letters``: the letters the code may start with (a worker draws only
    from its own share, ``lgmp.rooms.shards``). There are 26**3 = 17,576 codes per
    first letter and the server's room limit is far below that, so a few random
    draws always find one.
    """
    while True:
        code = rng.choice(first_letters) + "".join(rng.choice(ROOM_CODE_LETTERS) for _ in range(ROOM_CODE_LENGTH - 1))
        if code not in taken and is_valid_room_code(code):
            return code
