"""The parser table of docs/protocol.md §3.4, row by row, through the engine on the QuickDraw state of the table."""

import pytest

from proactivebench.eval import Episode
from proactivebench.parsing import lenient_evaluate, paper_evaluate, std_full, std_letter

MOVE = "Make this drawing more complete."

# (generated, action verdict, category verdict)
TABLE = [
    ("B", "correct", "mismatch"),
    ("b", "correct", "mismatch"),
    (" B ", "correct", "mismatch"),
    ("B.", "correct", "mismatch"),
    ("B. Make this drawing more complete.", "correct", "mismatch"),
    ("Make this drawing more complete.", "correct", "mismatch"),
    ("make this  drawing more complete.", "correct", "mismatch"),
    ("Make this drawing more complete", "mismatch", "mismatch"),
    ("(B)", "mismatch", "mismatch"),
    ("B)", "mismatch", "mismatch"),
    ("Answer: B", "mismatch", "mismatch"),
    ("The answer is B.", "mismatch", "mismatch"),
    ("\nB. Make this drawing more complete.", "correct", "mismatch"),
    ("E", "mismatch", "correct"),
    ("E. Bed.", "mismatch", "correct"),
    ("Bed.", "mismatch", "correct"),
    ("bed.", "mismatch", "correct"),
    ("e. bed.", "mismatch", "correct"),
    ("Bed", "mismatch", "mismatch"),
    ("BED.", "mismatch", "mismatch"),
    ("A", "wrong", "mismatch"),
    ("I cannot answer this question.", "wrong", "mismatch"),
    ("G", "mismatch", "mismatch"),
    ("", "mismatch", "mismatch"),
    (".", "mismatch", "mismatch"),
    ("B.C.", "correct", "mismatch"),
]


@pytest.mark.parametrize("generated,action,category", TABLE)
def test_parser_table_row(imported_rows, generated, action, category):
    turn = Episode(imported_rows["quickdraw-000000"]).step(generated)
    assert (turn.option_verdict, turn.category_verdict) == (action, category)


def test_standardisation_examples():
    assert std_full("B. Make this drawing more complete.") == "makethisdrawingmorecomplete."
    assert std_full("BED.") == "" and std_full("The answer is B.") == ""
    assert std_full("\nB. Make this") == "b.makethis"
    assert std_letter("B.C.") == "b" and std_letter("Answer: B") == "#" and std_letter(".") == ""


def test_lenient_parser_is_opt_in(imported_rows):
    row = imported_rows["quickdraw-000000"]
    assert Episode(row).step("(B)").option_verdict == "mismatch"
    lenient = Episode(row, parser="lenient")
    assert lenient.step("(B)").option_verdict == "correct"
    assert Episode(row, parser="lenient").step("Bed").category_verdict == "correct"
    assert Episode(row, parser="lenient").step("Answer: E").category_verdict == "correct"
    # Lenient never changes a verdict the paper parser reached.
    options = ["I cannot answer this question.", MOVE]
    for generated, _, _ in TABLE:
        paper = paper_evaluate(generated, [MOVE], options, 0)
        if paper.matched:
            assert lenient_evaluate(generated, [MOVE], options, 0) == paper


def test_unknown_parser_is_rejected(imported_rows):
    with pytest.raises(ValueError, match="unknown parser"):
        Episode(imported_rows["quickdraw-000000"], parser="fuzzy")
