"""Usernames and room codes: what a person may call themselves, and room codes to hand out.

Profanity is judged by ``better_profanity``'s maintained word list, which also
catches the leetspeak spellings of its words ("sh1t"), rather than by a regex
of our own. Its answers are kept, but asking it costs hundreds of microseconds
a name (it compares each word of a text with every listed word's spellings), so
names are screened first and room codes never ask it (see below).
"""

from __future__ import annotations

import functools
import itertools
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


# --- the library's answers, cheaper -----------------------------------------------------
# A listed word matches a word of a text only when both have the same length and
# each character of the text is one of the listed character's spellings (the
# library's character map: "a" may be "a", "@", "*" or "4"). The spellings of a
# character all fall in one *class* (the map's overlaps joined: a @ * 4 i l 1 o 0
# u v e 3 are one class, s $ 5 another, t 7 a third), so a text can hold a listed
# word only where its class spelling holds the word's. A name in which no run of
# characters (with or without its separators) spells a listed word's class
# spelling is clean without asking the library; any other is asked, and its
# answer cached.


def _spelling_classes(char_map: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Each character the map mentions -> one representative of its class."""
    parent: dict[str, str] = {}

    def root(c: str) -> str:
        while parent.setdefault(c, c) != c:
            c = parent[c]
        return c

    for char, spellings in char_map.items():
        for spelling in spellings:
            parent[root(spelling)] = root(char)
    return {c: root(c) for c in parent}


_CLASS_OF = str.maketrans(_spelling_classes(profanity.CHARS_MAPPING))
if any(len(s) != 1 for spellings in profanity.CHARS_MAPPING.values() for s in spellings):
    raise ImportError("the profanity screen assumes one character per spelling")  # else lengths could differ
_LISTED = [str(word) for word in profanity.CENSOR_WORDSET]
_LISTED_CLASSES = frozenset(word.translate(_CLASS_OF) for word in _LISTED)
_LISTED_LENGTHS = tuple(sorted({len(word) for word in _LISTED}))
_SEPARATORS = str.maketrans("", "", "[]")  # the only characters of a name that split its words


def _may_be_profane(name: str) -> bool:
    """False only when no listed word can match anywhere in ``name`` (a name of the
    allowed shape): the library would find nothing."""
    lowered = name.lower()
    for text in {lowered, lowered.translate(_SEPARATORS)}:
        classes = text.translate(_CLASS_OF)
        for n in _LISTED_LENGTHS:
            if n > len(classes):
                break
            if any(classes[i : i + n] in _LISTED_CLASSES for i in range(len(classes) - n + 1)):
                return True
    return False


# Names repeat (players keep theirs from game to game); the library's answers are
# cached, as many as a busy server's distinct recent names, not every one ever seen.
@functools.lru_cache(maxsize=4096)
def _library_says_profane(text: str) -> bool:
    return profanity.contains_profanity(text)


def is_profane(text: str) -> bool:
    """True when ``text`` contains a word (or its leetspeak) from the profanity list."""
    if _NAME_CHARS.fullmatch(text) and not _may_be_profane(text):
        return False
    return _library_says_profane(text)


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


def _offensive_codes() -> frozenset[str]:
    """Every four-letter code ``is_offensive_code`` refuses, worked out once from the lists.

    A code is one word of four letters, so the library finds a listed word in it
    only when the whole code is one of that word's spellings: those are spelt
    out here (letters only: a code has no "@" or "4"), with the extra words and
    every code holding a short word somewhere.
    """
    letters = ROOM_CODE_LETTERS.lower()
    refused = set(_EXTRA_CODE_WORDS)
    for word in profanity.CENSOR_WORDSET:
        if len(str(word)) == ROOM_CODE_LENGTH:
            spellings = [[c for c in combo if c in letters] for combo in word._char_combos]
            refused.update("".join(s).upper() for s in itertools.product(*spellings))
    for short in _SHORT_WORDS:
        for at in range(ROOM_CODE_LENGTH - len(short) + 1):
            for rest in itertools.product(ROOM_CODE_LETTERS, repeat=ROOM_CODE_LENGTH - len(short)):
                code = "".join(rest[:at]) + short + "".join(rest[at:])
                refused.add(code)
    return frozenset(refused)


def _is_offensive_code_slowly(code: str) -> bool:
    if code in _EXTRA_CODE_WORDS or is_profane(code):
        return True
    return any(code[i : i + n] in _SHORT_WORDS for n in (3, 4) for i in range(len(code) - n + 1))


#: The pool room codes are drawn from is every code of four letters but these,
#: checked once here rather than on every draw.
_OFFENSIVE_CODES = _offensive_codes()
_CODE_SHAPE = re.compile(f"[A-Z]{{{ROOM_CODE_LENGTH}}}")


def is_offensive_code(code: str) -> bool:
    """True when a word of the profanity list (3-4 letters) appears anywhere in ``code``."""
    if _CODE_SHAPE.fullmatch(code):
        return code in _OFFENSIVE_CODES
    return _is_offensive_code_slowly(code)


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
