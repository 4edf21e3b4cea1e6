"""lgmp.game.rules against RULES.md, restated here independently, table by table."""

import random
from collections import Counter

import pytest

from lgmp.game.rules import (
    ALL_CAREERS,
    AVATAR_NAMES,
    BOARD,
    BOARD_SIZE,
    BRAND_CRISIS_DECK,
    CARD_SPACES,
    CAREER_POINT_DECK,
    CAREERS,
    DECKS,
    DID_YOU_KNOW_DECK,
    DID_YOU_KNOW_FIELD,
    DID_YOU_KNOW_PILES,
    FIELD_COLOURS,
    FIELD_LETTERS,
    FIELD_NAMES,
    FINISH_CARD_NAMES,
    FINISH_SPACE,
    SEATS,
    SPACE_NAMES,
    SPINNER_WEDGES,
    SPIN_NUMBERS,
    YOURE_THE_BOSS_DECK,
    Avatar,
    BrandCrisisCard,
    Career,
    CareerPointCard,
    DidYouKnowCard,
    Field,
    FinishCard,
    SpaceKind,
    UnknownCard,
    YoureTheBossCard,
    card,
    card_answers,
    NO_SUCH_CARD,
    card_text,
    card_title,
    career_salary,
    default_answer,
    default_career,
    default_field,
    draw_spin,
    find_card,
    find_career,
    finish_card,
    format_salary,
    move_words,
    ordinal,
    token_name,
    wire_salary,
)
from lgmp.wire import codec
from lgmp.wire.packets import CardAction

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
    # The codec sizes its seat arrays and GAME's occupancy on its own; they must agree.
    assert codec.SEAT_COUNT == len(SEATS) and codec.BOARD_SPACES == BOARD_SIZE


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
    assert list(SPIN_NUMBERS) == [1, 2, 3, 4, 5, 6]


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


# --------------------------------------------------------------------------- look-ups

def test_card_by_kind_and_number():
    assert card(SpaceKind.BRAND_CRISIS, 2) == BrandCrisisCard(2, -3)
    assert card(SpaceKind.CAREER_POINT, 7) == CareerPointCard(7, -1, 2)
    assert card(SpaceKind.YOURE_THE_BOSS, 1).options == (F.ADVERTISING, F.GRAPHIC_MEDIA_MANAGEMENT,
                                                         F.BUSINESS_DATA_ANALYTICS, F.PUBLIC_RELATIONS,
                                                         F.MARKETING)
    assert card(4, 12) == DidYouKnowCard(12, F.PUBLIC_RELATIONS)   # plain wire numbers work too
    assert [len(DECKS[k]) for k in sorted(DECKS)] == [12, 8, 8, 39]
    assert set(DECKS) == CARD_SPACES


@pytest.mark.parametrize("kind, number", [
    (SpaceKind.BRAND_CRISIS, 0), (SpaceKind.BRAND_CRISIS, 13), (SpaceKind.CAREER_POINT, 9),
    (SpaceKind.YOURE_THE_BOSS, -1), (SpaceKind.DID_YOU_KNOW, 40),
    (SpaceKind.PLAIN, 1), (SpaceKind.FINISH, 1), (6, 1), (255, 255),
])
def test_no_such_card(kind, number):
    assert find_card(kind, number) is None
    with pytest.raises(UnknownCard):
        card(kind, number)
    assert issubclass(UnknownCard, LookupError)


def test_each_card_knows_its_kind_action_and_who_answers():
    assert [(k, c.kind, c.action, c.everyone_answers)
            for k, deck in DECKS.items() for c in deck[:1]] == [
        (SpaceKind.BRAND_CRISIS, SpaceKind.BRAND_CRISIS, CardAction.MOVE, False),
        (SpaceKind.CAREER_POINT, SpaceKind.CAREER_POINT, CardAction.MOVE, False),
        (SpaceKind.YOURE_THE_BOSS, SpaceKind.YOURE_THE_BOSS, CardAction.TOKEN, True),
        (SpaceKind.DID_YOU_KNOW, SpaceKind.DID_YOU_KNOW, CardAction.TOKEN, True),
    ]
    assert CardAction.MOVE == 1 and CardAction.TOKEN == 2   # WIRE.md's CARD actions
    assert all(c.kind is k for k, deck in DECKS.items() for c in deck)
    assert not hasattr(YoureTheBossCard(1, ()), "__dict__")   # the class constants take no slot


def test_card_answers():
    assert card_answers(BrandCrisisCard(1, -1)) == (-1,)
    assert card_answers(CareerPointCard(4, 1, -1)) == (1, -1)          # A then B
    assert card_answers(YoureTheBossCard(4, (F.ADVERTISING, F.DESIGN))) == (6, 1)
    assert card_answers(DidYouKnowCard(30, F.MARKETING)) == (5, 0)    # take or decline


def test_default_answers_are_the_servers_auto_play():
    assert [default_answer(c) for c in BRAND_CRISIS_DECK] == [c.move for c in BRAND_CRISIS_DECK]
    # The larger move; on a tie (none in the deck yet) option A.
    assert [default_answer(c) for c in CAREER_POINT_DECK] == [2, 0, 0, 1, 0, 2, 2, 2]
    assert default_answer(CareerPointCard(9, 1, 1)) == 1
    assert {default_answer(c) for c in YOURE_THE_BOSS_DECK} == {F.ADVERTISING}   # first option
    assert all(default_answer(c) == c.field for c in DID_YOU_KNOW_DECK)          # take the token
    every = [c for deck in DECKS.values() for c in deck]
    assert all(default_answer(c) in card_answers(c) for c in every)


def test_finish_card_by_place():
    assert finish_card(1, 1) is FinishCard.FIRST             # a lone player
    assert [finish_card(p, 2) for p in (1, 2)] == [FinishCard.FIRST, FinishCard.LAST]
    assert [finish_card(p, 4) for p in (1, 2, 3, 4)] == [
        FinishCard.FIRST, FinishCard.OTHER, FinishCard.OTHER, FinishCard.LAST]


def test_draw_spin_is_a_wedge():
    rng = random.Random(3)
    twin = random.Random(3)
    draws = [draw_spin(rng) for _ in range(200)]
    assert draws == [twin.choice((6, 3, 4, 6, 5, 4, 1, 5, 6, 3, 2, 4)) for _ in range(200)]


def test_default_field_most_tokens_lowest_on_a_tie():
    assert default_field({}) is F.DESIGN
    assert default_field({F.ADVERTISING: 1}) is F.ADVERTISING
    assert default_field({5: 2, 6: 2, 1: 1}) is F.MARKETING
    assert default_field(Counter({F.PUBLIC_RELATIONS: 3, F.GRAPHIC_MEDIA_MANAGEMENT: 3})) \
        is F.PUBLIC_RELATIONS


def test_default_career_best_paid_first_listed_on_a_tie():
    assert {f: default_career(f).name for f in Field} == {
        F.DESIGN: "Creative Director",
        F.PUBLIC_RELATIONS: "Marketing Director",
        F.BUSINESS_DATA_ANALYTICS: "System Architect",
        F.GRAPHIC_MEDIA_MANAGEMENT: "Customer Service Project Manager",
        F.MARKETING: "Brand/Product Manager",
        F.ADVERTISING: "Brand/Product Manager",
    }
    assert default_career(5).field is F.MARKETING
    with pytest.raises(ValueError):
        default_career(7)


def test_all_careers_is_the_table_in_order():
    assert len(ALL_CAREERS) == sum(len(rows) for rows in SALARIES.values()) == 27
    assert ALL_CAREERS[0] == Career("Marketing Research Specialist", F.ADVERTISING, 50500)
    assert ALL_CAREERS[-1] == Career("System Architect", F.BUSINESS_DATA_ANALYTICS, 105000)


def test_career_salary_is_the_catalogues_exact_figure():
    # The wire rounds down; screens show what the catalogue says.
    assert career_salary("User Experience Designer", 90) == 90_700
    assert career_salary("Business Data Analyst", 69) == 69_252
    assert career_salary("creative director", 132) == 132_770       # any letter case
    # Not a catalogue career, or thousands that do not match it: the wire's figure.
    assert career_salary("Astronaut", 90) == 90_000
    assert career_salary("User Experience Designer", 91) == 91_000
    assert career_salary("", 0) == 0


def test_names_for_people():
    assert [SPACE_NAMES[k] for k in SpaceKind] == [
        "Plain", "Brand Crisis", "Career Point", "You're the Boss", "Did You Know", "Finish"]
    assert [FINISH_CARD_NAMES[c] for c in FinishCard] == [
        "first to finish", "finished", "last to finish"]
    assert format_salary(90_700) == "$90,700"
    assert format_salary(132_840) == "$132,840"
    assert format_salary(0) == "$0"
    assert token_name(F.MARKETING) == "a Marketing token"
    assert token_name(6) == "an Advertising token"


def test_a_card_in_words():
    """The one wording of a dealt card that the screens, the pages and the dumper share."""
    K = SpaceKind
    assert [card_title(K.BRAND_CRISIS, 2), card_title(K.FINISH, 1), card_title(7, 3)] == \
        ["Brand Crisis #2", "Finish #1", "kind 7 #3"]
    assert card_text(K.BRAND_CRISIS, 2) == "move 3 spaces back"
    assert card_text(K.CAREER_POINT, 7) == "A: move 1 space back, or B: move 2 spaces forward"
    assert card_text(K.CAREER_POINT, 1) == "A: move 2 spaces forward, or B: stay put"
    assert card_text(K.YOURE_THE_BOSS, 1) == ("every player takes a token of one of: Advertising, "
                                              "Graphic Media Management, Business Data Analytics, Public Relations, Marketing")
    assert card_text(K.DID_YOU_KNOW, 1) == "every player may take a Design token"
    assert card_text(K.DID_YOU_KNOW, 39) == "every player may take an Advertising token"
    assert [card_text(K.FINISH, n) for n in (1, 2, 3)] == ["first to finish", "finished", "last to finish"]
    for kind, number in [(K.BRAND_CRISIS, 0), (K.BRAND_CRISIS, 13), (K.FINISH, 4), (K.PLAIN, 1), (9, 1)]:
        assert card_text(kind, number) == NO_SUCH_CARD
    assert [move_words(m) for m in (2, 1, 0, -1, -3)] == [
        "move 2 spaces forward", "move 1 space forward", "stay put", "move 1 space back", "move 3 spaces back"]


def test_ordinal():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
