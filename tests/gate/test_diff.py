"""The lines a reviewer reads when a locked prompt's definition changed (``promptsel.gate.diff``),
case by case. Each expected line is worked out by hand in the comments: where the two texts
first and last differ, the word boundary the context widens to, where the ellipses go. Issue
24's mutation run left 44 of diff.py's mutants alive under the gate's one test of it.
"""

from __future__ import annotations

from promptsel.gate.diff import describe_changes, text_change

# "The quick brown fox jumps over the lazy dog today": 49 characters, spaces at 3, 9, 15, 19,
# 25, 30, 34, 39 and 43; "dog" at 40-42.
FOX = "The quick brown fox jumps over the lazy dog today"
CAT = FOX.replace("dog", "cat")


def test_a_change_late_in_a_text_keeps_the_words_before_it():
    # First difference at 40, last 6 characters equal. The context of 12 reaches back to 28;
    # the last space before 28 is at 25, so the shown part starts at 26 ("over"), with "…" for
    # what is cut; the end is within 12 of the text's end, so it runs to the end.
    assert text_change(FOX, CAT) == ('"…over the lazy dog today"', '"…over the lazy cat today"')
    # A context of 4 reaches back to 36: the last space before it is at 34.
    assert text_change(FOX, CAT, context=4) == ('"…lazy dog today"', '"…lazy cat today"')
    # A context of 40 reaches before the text: nothing is cut.
    assert text_change(FOX, CAT, context=40) == (f'"{FOX}"', f'"{CAT}"')


def test_a_change_early_in_a_text_keeps_the_words_after_it():
    # Only the first word differs (its three letters, so the texts end alike from 3 on): the
    # shown part starts at 0 and ends at the first space at or after 3 + 12 = 15 (spaces at 3,
    # 6, 8, 13, 18), with "…" for the rest.
    a = "dog is a very good and loyal friend to all people"
    b = "cat" + a[3:]
    assert text_change(a, b) == ('"dog is a very good…"', '"cat is a very good…"')
    # No space after the context: the shown part runs to the end.
    assert text_change("dog isaverygoodandloyalfriend", "cat isaverygoodandloyalfriend") == (
        '"dog isaverygoodandloyalfriend"', '"cat isaverygoodandloyalfriend"')


def test_the_default_context_is_twelve_characters():
    # The texts end alike from 3 on; 3 + 12 = 15 is a space, so the shown part ends there (a
    # context of 13 would run on to the space at 20).
    assert text_change("dog 12345678901 rest of it", "cat 12345678901 rest of it") == (
        '"dog 12345678901…"', '"cat 12345678901…"')


def test_without_context_exactly_the_changed_words_are_shown():
    # A context of 0 shows the words the change touches, so where the common prefix and suffix
    # end shows directly: here only the first word, only the second, or the second to the last.
    assert text_change("a b c", "X b c", context=0) == ('"a…"', '"X…"')
    assert text_change("ab c d e", "aX c d e", context=0) == ('"ab…"', '"aX…"')
    assert text_change("c b a", "X b Y", context=0) == ('"c b a"', '"X b Y"')
    assert text_change("a b c d ef", "a X c d Xf", context=0) == ('"…b c d ef"', '"…X c d Xf"')
    # The last space before the change is the text's first character: shown from just after it.
    assert text_change(" abcdefghijklmnopq", " abcdefghijklmnopX") == ('"…abcdefghijklmnopq"', '"…abcdefghijklmnopX"')


def test_a_long_change_is_cut_in_its_middle():
    # 100 changed characters, over the limit of 60: the first 30, "…", the last 30.
    a, b = "a" * 50 + "x" * 50, "b" * 50 + "y" * 50
    assert text_change(a, b) == ('"' + "a" * 30 + "…" + "x" * 30 + '"', '"' + "b" * 30 + "…" + "y" * 30 + '"')
    assert text_change(a, b, limit=10) == ('"aaaaa…xxxxx"', '"bbbbb…yyyyy"')
    # Exactly at the limit: not cut.
    assert text_change("a" * 60, "b" * 60) == ('"' + "a" * 60 + '"', '"' + "b" * 60 + '"')


def test_a_text_that_extends_the_other_is_shown_whole():
    # "aa" is both a prefix and a suffix of "aaa": the common prefix (2) leaves no room for a
    # common suffix in the shorter text, so neither part is cut.
    assert text_change("aa", "aaa") == ('"aa"', '"aaa"')
    assert text_change("good", "good movie") == ('"good"', '"good movie"')
    assert text_change("", "Think.") == ('""', '"Think."')
    assert text_change("same", "same") == ('"same"', '"same"')


def test_newlines_are_shown_as_backslash_n():
    assert text_change("a\nb", "a\nc") == ('"a\\nb"', '"a\\nc"')


def test_fields_come_in_the_definitions_order_then_by_name():
    old = {"zeta": 1, "alpha": True, "target_delimiter": " ", "chat": False, "system": "s", "template": "a",
           "instruction": "i", "cot": False}
    new = {"zeta": 2, "alpha": False, "target_delimiter": "\n", "chat": True, "system": "t", "template": "b",
           "instruction": "i", "cot": False}
    # instruction and cot unchanged: no line. Known fields in _FIELD_ORDER's order (template,
    # system, chat, target_delimiter), then the others by name (alpha, zeta).
    assert describe_changes(old, new) == [
        'template: "a" → "b"', 'system: "s" → "t"', "chat: false → true", 'target_delimiter: " " → "\\n"',
        "alpha: true → false", "zeta: 1 → 2"]
    assert describe_changes(old, dict(old)) == []


def test_a_text_set_or_cleared_shows_none_on_its_empty_side():
    assert describe_changes({}, {"cot_instruction": "Think."}) == ['cot_instruction: (none) → "Think."']
    assert describe_changes({"cot_instruction": "Think."}, {"cot_instruction": None}) == ['cot_instruction: "Think." → (none)']
    # An empty text is a text, not none.
    assert describe_changes({"system": ""}, {"system": None}) == ['system: "" → (none)']
    assert describe_changes({"system": None}, {"system": ""}) == ['system: (none) → ""']


def test_other_values_are_shown_as_json_with_their_own_letters():
    assert describe_changes({"stop": ["é"]}, {"stop": ["ü", "x"]}) == ['stop: ["é"] → ["ü", "x"]']
    assert describe_changes({"n": None}, {"n": 3}) == ["n: null → 3"]


def test_answer_choices_come_after_the_template_and_both_are_listed():
    assert describe_changes({"template": "a", "answer_choices": [["p", ["y"]]]}, {"template": "b", "answer_choices": [["p", ["n"]]]}) == [
        'template: "a" → "b"', "answer_choices.p: [y] → [n]"]


def test_answer_choices_by_class():
    old = [["positive", ["yes", "Yes"]], ["negative", ["no"]]]
    new = [["positive", ["great"]], ["neutral", ["meh", "ok"]]]
    # Classes in the old order, then the new ones: positive changed, negative removed, neutral added.
    assert describe_changes({"answer_choices": old}, {"answer_choices": new}) == [
        "answer_choices.positive: [yes, Yes] → [great]", "answer_choices: class negative removed",
        "answer_choices: class neutral added [meh, ok]"]
    # From no answer choices at all: every class added; to none: every class removed.
    assert describe_changes({}, {"answer_choices": old}) == [
        "answer_choices: class positive added [yes, Yes]", "answer_choices: class negative added [no]"]
    assert describe_changes({"answer_choices": old}, {"answer_choices": None}) == [
        "answer_choices: class positive removed", "answer_choices: class negative removed"]
    # The same words in another class order: the order is the change.
    assert describe_changes({"answer_choices": old}, {"answer_choices": old[::-1]}) == [
        "answer_choices: class order positive, negative → negative, positive"]
