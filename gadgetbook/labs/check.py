"""Checks for lab notebooks: does the student's answer (most often a DataFrame) answer the question? Each check
shows a verdict in the notebook, with a hint when the answer is not there yet.

    from gadgetbook.labs.check import Question, columns, rows, values

    q1 = Question("Which program opened /etc/hostname, and how often?",
                  columns("comm", "count"), rows(1), values("comm", {"cat"}),
                  hint="Keep the rows whose path is /etc/hostname, then count them per comm.")
    q1.check(answer)          # a verdict: "correct", or what is wrong and the hint

An expectation is any function of the answer that returns None when it holds and a sentence when it
does not. With `strict` (or GADGETBOOK_LABS_STRICT=1, as the tests run labs) a wrong answer raises
WrongAnswer, so that the cell fails.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Expectation = Callable[[Any], "str | None"]


class WrongAnswer(AssertionError):
    """A lab answer that does not answer its question (raised in strict mode)."""


def _frame(answer: Any) -> str | None:
    import pandas as pd

    if isinstance(answer, pd.DataFrame):
        return None
    if hasattr(answer, "events") and isinstance(answer.events, pd.DataFrame):
        return "This is a program's whole result; answer with its DataFrame (result.events, or result['map'])."
    return f"The answer should be a pandas DataFrame, not {type(answer).__name__}."


def columns(*names: str) -> Expectation:
    """The DataFrame has these columns (others may be there too)."""

    def expect(answer):
        missing = [n for n in names if n not in answer.columns]
        if missing:
            return (f"It has no column {', '.join(missing)} (its columns: {', '.join(map(str, answer.columns))}).")
        return None

    return expect


def rows(exactly: int | None = None, *, at_least: int | None = None, at_most: int | None = None) -> Expectation:
    """The DataFrame has this many rows (or at least / at most)."""

    def expect(answer):
        n = len(answer)
        if exactly is not None and n != exactly:
            return f"It has {n} row{'s' if n != 1 else ''}; the answer has {exactly}."
        if at_least is not None and n < at_least:
            return f"It has {n} row{'s' if n != 1 else ''}; the answer has at least {at_least}."
        if at_most is not None and n > at_most:
            return f"It has {n} rows; the answer has at most {at_most}."
        return None

    return expect


def values(column: str, expected: Iterable[Any], *, exactly: bool = True) -> Expectation:
    """The column holds these values: exactly these (as a set), or at least these when exactly=False."""
    want = set(expected)

    def expect(answer):
        if column not in answer.columns:
            return f"It has no column {column}."
        have = set(answer[column].dropna().tolist())
        missing = sorted(map(str, want - have))
        if missing:
            return f"The column {column} lacks {', '.join(missing)}."
        extra = sorted(map(str, have - want))
        if exactly and extra:
            shown = ", ".join(extra[:5]) + (", ..." if len(extra) > 5 else "")
            return f"The column {column} also holds {shown}, which do not belong in the answer."
        return None

    return expect


def equals(expected, *, on: Iterable[str] | None = None) -> Expectation:
    """The same rows as `expected` (a DataFrame), in any order, over the columns `on` (default: all of
    expected's), compared as values (dtypes and index aside)."""

    def expect(answer):
        cols = list(on) if on is not None else list(expected.columns)
        missing = [c for c in cols if c not in answer.columns]
        if missing:
            return f"It has no column {', '.join(missing)}."

        def canonical(df):
            part = df[cols].astype(object).where(df[cols].notna(), None)
            return sorted(map(tuple, part.itertuples(index=False, name=None)), key=repr)

        mine, theirs = canonical(answer), canonical(expected)
        if mine == theirs:
            return None
        if len(mine) != len(theirs):
            return f"It has {len(mine)} rows over {', '.join(cols)}; the answer has {len(theirs)}."
        wrong = next(r for r in mine if r not in theirs)
        return f"A row is not in the answer: {dict(zip(cols, wrong))}."

    return expect


def holds(predicate: Callable[[Any], bool], problem: str) -> Expectation:
    """Any condition: `problem` is the sentence shown when predicate(answer) is false."""

    def expect(answer):
        try:
            ok = bool(predicate(answer))
        except Exception as exc:  # a check that cannot even be asked is a wrong shape of answer
            return f"{problem} ({type(exc).__name__}: {exc})"
        return None if ok else problem

    return expect


@dataclass
class Verdict:
    """What a check found: the problems (none when correct) and the hint; true when correct."""

    question: str
    problems: list[str] = field(default_factory=list)
    hint: str = ""

    def __bool__(self) -> bool:
        return not self.problems

    @property
    def passed(self) -> bool:
        return bool(self)

    def text(self) -> str:
        head = f"{self.question}: " if self.question else ""
        if self:
            return f"✔ {head}correct."
        lines = [f"✘ {head}not yet.", *(f"  - {p}" for p in self.problems)]
        if self.hint:
            lines.append(f"  Hint: {self.hint}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        color, border = ("#1a7f37", "#aceebb") if self else ("#b35900", "#ffd8a8")
        lines = self.text().splitlines()
        body = "<br>".join(html.escape(line.strip()) for line in lines)
        return (f'<div class="gadgetbook-check" style="border-left:4px solid {border};padding:4px 8px;'
                f'color:{color}">{body}</div>')

    def raise_if_wrong(self) -> Verdict:
        if not self:
            raise WrongAnswer(self.text())
        return self


def _strict(strict: bool | None) -> bool:
    return strict if strict is not None else os.environ.get("GADGETBOOK_LABS_STRICT") == "1"


@dataclass
class Question:
    """A lab question: its expectations of the answer (a DataFrame unless told otherwise) and a hint."""

    text: str
    expectations: tuple[Expectation, ...] = ()
    hint: str = ""
    dataframe: bool = True

    def __init__(self, text: str, *expectations: Expectation, hint: str = "", dataframe: bool = True) -> None:
        self.text = text
        self.expectations = expectations
        self.hint = hint
        self.dataframe = dataframe

    def check(self, answer: Any, strict: bool | None = None) -> Verdict:
        """The verdict on `answer`; shown by the notebook when it is the cell's last line."""
        return check(answer, *self.expectations, question=self.text, hint=self.hint, dataframe=self.dataframe,
                     strict=strict)


def check(answer: Any, *expectations: Expectation, question: str = "", hint: str = "", dataframe: bool = True,
          strict: bool | None = None) -> Verdict:
    """The verdict of expectations on an answer; the first one that fails stops the rest (they would only
    repeat it). A DataFrame is expected unless dataframe=False."""
    problems = []
    for expect in ((_frame,) if dataframe else ()) + tuple(expectations):
        problem = expect(answer)
        if problem:
            problems.append(problem)
            break
    verdict = Verdict(question, problems, hint)
    return verdict.raise_if_wrong() if _strict(strict) else verdict
