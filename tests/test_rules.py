"""lgmp.game.rules against RULES.md, restated here independently, table by table."""

from collections import Counter

import pytest

from lgmp.game.rules import (
    AVATAR_NAMES,
    BOARD,
    BOARD_SIZE,
    BRAND_CRISIS_DECK,
    CAREER_POINT_DECK,
    CAREERS,
    DID_YOU_KNOW_DECK,
    DID_YOU_KNOW_FIELD,
    DID_YOU_KNOW_PILES,
    FIELD_COLOURS,
    FIELD_LETTERS,
    FIELD_NAMES,
    FINISH_SPACE,
    SEATS,
    SPINNER_WEDGES,
    YOURE_THE_BOSS_DECK,
    Avatar,
    BrandCrisisCard,
    Career,
    Field,
    FinishCard,
    SpaceKind,
    find_career,
    wire_salary,
)

F = Field


def test_wire_numbers_of_enums():
    assert [(k.name, k.value) for k in SpaceKind] == [
        ("PLAIN", 0), ("BRAND_CRISIS", 1), ("CAREER_POINT", 2),
        ("YOURE_THE_BOSS", 3), ("DID_YOU_KNOW", 4), ("FINISH", 5)]
    assert [(f.name, f.value) for f in Field] == [
        ("DESIGN", 1), ("PUBLIC_RELATIONS", 2), ("BUSINESS_DATA_ANALYTICS", 3),
        ("GRAPHIC_MEDIA_MANAGEMENT", 4), ("MARKETING", 5), ("ADVERTISING", 6)]
    assert [(a.name, a.value) for a in Avatar] == [
        ("RED", 1), ("YELLOW", 2), ("GREEN", 3), ("BLUE", 4), ("PURPLE", 5), ("PINK", 6)]
    assert [AVATAR_NAMES[a] for a in Avatar] == ["Red", "Yellow", "Green", "Blue",
                                                 "Purple", "Pink"]
    assert [(c.name, c.value) for c in FinishCard] == [("FIRST", 1), ("OTHER", 2),
                                                       ("LAST", 3)]


def test_field_letters_names_colours():
    assert "".join(FIELD_LETTERS[f] for f in Field) == "DPBGMA"
    assert [FIELD_NAMES[f] for f in Field] == [
        "Design", "Public Relations", "Business Data Analytics",
        "Graphic Media Management", "Marketing", "Advertising"]
    assert [FIELD_COLOURS[f] for f in Field] == ["red", "yellow", "pink", "green",
                                                 "purple", "blue"]


def test_board_constants():
    assert list(SEATS) == [1, 2, 3, 4, 5, 6]
    assert BOARD_SIZE == 56 == len(BOARD)
    assert FINISH_SPACE == 55


def test_board_spaces():
    expected = {
        SpaceKind.BRAND_CRISIS: [18, 30],
        SpaceKind.CAREER_POINT: [4, 12, 25, 37, 53],
        SpaceKind.YOURE_THE_BOSS: [8, 11, 22, 29, 36, 41, 47],
        SpaceKind.DID_YOU_KNOW: [1, 6, 10, 15, 17, 21, 27, 32, 34, 39, 42, 46, 50],
        SpaceKind.FINISH: [55],
    }
    for kind, spaces in expected.items():
        assert [i for i, k in enumerate(BOARD) if k is kind] == spaces, kind
    special = {s for spaces in expected.values() for s in spaces}
    assert [i for i, k in enumerate(BOARD) if k is SpaceKind.PLAIN] == \
        [i for i in range(56) if i not in special]
    assert BOARD[0] is SpaceKind.PLAIN and BOARD[54] is SpaceKind.PLAIN


def test_did_you_know_colours():
    assert dict(DID_YOU_KNOW_FIELD) == {
        1: F.MARKETING, 6: F.MARKETING, 10: F.MARKETING,
        15: F.GRAPHIC_MEDIA_MANAGEMENT, 17: F.GRAPHIC_MEDIA_MANAGEMENT,
        21: F.DESIGN, 27: F.DESIGN,
        32: F.BUSINESS_DATA_ANALYTICS, 34: F.BUSINESS_DATA_ANALYTICS,
        39: F.PUBLIC_RELATIONS, 42: F.PUBLIC_RELATIONS,
        46: F.ADVERTISING, 50: F.ADVERTISING,
    }


def test_spinner():
    assert SPINNER_WEDGES == (6, 3, 4, 6, 5, 4, 1, 5, 6, 3, 2, 4)
    assert Counter(SPINNER_WEDGES) == {4: 3, 6: 3, 3: 2, 5: 2, 1: 1, 2: 1}


def test_brand_crisis_deck():
    assert [(c.number, c.move) for c in BRAND_CRISIS_DECK] == [
        (1, -1), (2, -3), (3, -1), (4, -2), (5, -1), (6, -2),
        (7, -2), (8, -2), (9, -1), (10, -3), (11, -2), (12, -2)]
    assert all(c.move < 0 for c in BRAND_CRISIS_DECK)


def test_career_point_deck():
    assert [(c.number, c.option_a, c.option_b) for c in CAREER_POINT_DECK] == [
        (1, 2, 0), (2, -2, 0), (3, -1, 0), (4, 1, -1),
        (5, -1, 0), (6, 2, 0), (7, -1, 2), (8, 0, 2)]


def test_youre_the_boss_deck():
    a, g, b, p, m, d = (F.ADVERTISING, F.GRAPHIC_MEDIA_MANAGEMENT,
                        F.BUSINESS_DATA_ANALYTICS, F.PUBLIC_RELATIONS, F.MARKETING,
                        F.DESIGN)
    expected = {1: (a, g, b, p, m),
                2: (a, g, b, p, m, d), 3: (a, g, b, p, m, d),
                5: (a, g, b, p, m, d), 8: (a, g, b, p, m, d),
                4: (a, p, b, d, m), 6: (a, p, b, d, m), 7: (a, p, b, d, m)}
    assert [c.number for c in YOURE_THE_BOSS_DECK] == list(range(1, 9))
    for card in YOURE_THE_BOSS_DECK:
        assert card.options == expected[card.number]


def test_did_you_know_deck_numbering():
    ranges = {F.DESIGN: range(1, 8), F.PUBLIC_RELATIONS: range(8, 14),
              F.BUSINESS_DATA_ANALYTICS: range(14, 20),
              F.GRAPHIC_MEDIA_MANAGEMENT: range(20, 27), F.MARKETING: range(27, 34),
              F.ADVERTISING: range(34, 40)}
    assert [c.number for c in DID_YOU_KNOW_DECK] == list(range(1, 40))
    for field, numbers in ranges.items():
        assert [c.number for c in DID_YOU_KNOW_PILES[field]] == list(numbers)
        assert all(c.field is field for c in DID_YOU_KNOW_PILES[field])


def test_cards_are_frozen():
    with pytest.raises(AttributeError):
        BRAND_CRISIS_DECK[0].move = 5  # type: ignore[misc]
    assert not hasattr(BrandCrisisCard(1, -1), "__dict__")   # slotted


SALARIES = {
    F.ADVERTISING: [("Marketing Research Specialist", 50500), ("Freelance Writer", 49400),
                    ("Healthcare Marketer", 84000), ("Advertising Account Manager", 62252),
                    ("Brand/Product Manager", 132840), ("Sales Professional", 62080)],
    F.MARKETING: [("Advertising Account Manager", 62252), ("Brand/Product Manager", 132840),
                  ("Sales Professional", 62080), ("Creative Director", 132770),
                  ("Research Director", 117000), ("Media Planner", 54000)],
    F.PUBLIC_RELATIONS: [("Marketing Research Specialist", 50500),
                         ("Marketing Director", 115000), ("Sales Manager", 74750),
                         ("Content Strategist", 72500),
                         ("Corporate Communications Manager", 70401),
                         ("Public Relations Director", 82800)],
    F.DESIGN: [("Creative Director", 132770), ("User Experience Designer", 90700),
               ("User Interface Designer", 80500)],
    F.GRAPHIC_MEDIA_MANAGEMENT: [("Graphic Media Technician", 49000),
                                 ("Graphic Media Technical Sales Representative", 49000),
                                 ("Customer Service Project Manager", 75000)],
    F.BUSINESS_DATA_ANALYTICS: [("Business Data Analyst", 69252),
                                ("Market Research Analyst", 58000),
                                ("System Architect", 105000)],
}


def test_careers_table():
    assert set(CAREERS) == set(Field)
    for field, rows in SALARIES.items():
        assert [(c.name, c.salary) for c in CAREERS[field]] == rows
        assert all(c.field is field for c in CAREERS[field])
        # Every name fits CRER's uint8 length and every salary FINL's uint8.
        assert all(len(c.name) < 256 and c.name.isascii() for c in CAREERS[field])
        assert all(0 <= wire_salary(c) <= 255 for c in CAREERS[field])


def test_find_career_is_case_insensitive_and_per_field():
    cd = find_career(F.DESIGN, "creative DIRECTOR")
    assert cd == Career("Creative Director", F.DESIGN, 132770)
    assert find_career(5, "Creative Director").field is F.MARKETING
    assert find_career(F.DESIGN, "Media Planner") is None       # a Marketing career
    assert find_career(F.DESIGN, "Creative Director ") is None  # no trimming
    assert find_career(7, "Creative Director") is None
    assert find_career(0, "Creative Director") is None


def test_wire_salary_is_thousands_rounded_down():
    assert wire_salary(find_career(F.ADVERTISING, "Brand/Product Manager")) == 132
    assert wire_salary(find_career(F.PUBLIC_RELATIONS, "Sales Manager")) == 74
    assert wire_salary(find_career(F.BUSINESS_DATA_ANALYTICS,
                                   "Business Data Analyst")) == 69
