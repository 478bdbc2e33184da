"""The lab checks: right answers pass, wrong answers fail with the sentence that says why and the hint; strict
mode makes a wrong answer fail its cell."""

import pandas as pd
import pytest

from gadgetbook.labs.check import (
    Question,
    WrongAnswer,
    check,
    columns,
    equals,
    holds,
    rows,
    values,
)

OPENS = pd.DataFrame({"comm": ["cat", "cat", "ls", "sh"], "path": ["/etc/hostname", "/etc/hostname", "/", "/etc"],
                      "pid": [10, 11, 12, 13]})
ANSWER = OPENS[OPENS.path == "/etc/hostname"].groupby("comm").size().rename("count").reset_index()

Q = Question("Which program opened /etc/hostname, and how often?",
             columns("comm", "count"), rows(1), values("comm", {"cat"}),
             equals(pd.DataFrame({"comm": ["cat"], "count": [2]})),
             hint="Keep the rows whose path is /etc/hostname, then count them per comm.")


def test_the_right_answer_passes():
    verdict = Q.check(ANSWER)
    assert verdict and verdict.passed and verdict.problems == []
    assert repr(verdict) == "✔ Which program opened /etc/hostname, and how often?: correct."
    assert "correct" in verdict._repr_html_()


@pytest.mark.parametrize("wrong,problem", [
    (OPENS.groupby("comm").size().rename("count").reset_index(), "It has 3 rows; the answer has 1."),
    (OPENS[OPENS.path == "/etc/hostname"], "It has no column count (its columns: comm, path, pid)."),
    (pd.DataFrame({"comm": ["cat"], "count": [3]}), "A row is not in the answer: {'comm': 'cat', 'count': 3}."),
    (pd.DataFrame({"comm": ["ls"], "count": [2]}), "The column comm lacks cat."),
    ([("cat", 2)], "The answer should be a pandas DataFrame, not list."),
])
def test_a_wrong_answer_fails_with_why_and_the_hint(wrong, problem):
    verdict = Q.check(wrong)
    assert not verdict and verdict.problems == [problem]
    text = repr(verdict)
    assert text.startswith("✘ Which program opened /etc/hostname, and how often?: not yet.")
    assert f"  - {problem}" in text and text.endswith(f"Hint: {Q.hint}")
    assert "not yet" in verdict._repr_html_() and "Hint:" in verdict._repr_html_()


def test_strict_mode_makes_a_wrong_answer_fail_its_cell(monkeypatch):
    with pytest.raises(WrongAnswer, match="not yet"):
        Q.check(ANSWER.assign(count=5), strict=True)
    monkeypatch.setenv("GADGETBOOK_LABS_STRICT", "1")
    with pytest.raises(AssertionError, match="Hint: Keep the rows"):
        Q.check(OPENS)
    assert Q.check(ANSWER)  # a right answer passes in strict mode too


def test_values_exactly_or_at_least_and_row_bounds():
    assert not check(OPENS, values("comm", {"cat", "ls"}))  # sh does not belong
    assert check(OPENS, values("comm", {"cat", "ls"}, exactly=False))
    assert check(OPENS, rows(at_least=4), rows(at_most=4))
    assert check(OPENS, rows(at_least=5)).problems == ["It has 4 rows; the answer has at least 5."]


def test_any_condition_and_answers_that_are_not_frames():
    assert check(7, holds(lambda n: n == 7, "Count the rows."), dataframe=False)
    verdict = check(6, holds(lambda n: n == 7, "Count the rows."), dataframe=False, hint="len(df)")
    assert verdict.problems == ["Count the rows."] and verdict.hint == "len(df)"
    broken = check(OPENS, holds(lambda df: df.missing.sum() > 0, "Sum the sizes."))
    assert broken.problems[0].startswith("Sum the sizes. (AttributeError:")


def test_a_programs_whole_result_is_told_to_answer_with_its_frame():
    class Result:
        events = OPENS

    assert check(Result()).problems == ["This is a program's whole result; answer with its DataFrame "
                                        "(result.events, or result['map'])."]
