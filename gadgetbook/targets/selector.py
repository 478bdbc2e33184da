"""Label selectors as Kubernetes writes them: `a=b,c!=d,e in (f,g),h notin (i),j,!k`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gadgetbook.errors import GadgetError

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_TERM = re.compile(
    rf"^\s*(?:(?P<not>!)\s*(?P<nkey>{_KEY})"
    rf"|(?P<key>{_KEY})\s*(?:(?P<op>==|!=|=)\s*(?P<value>{_VALUE})"
    rf"|\s+(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?)\s*$"
)


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op in ("=", "in"):
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # "!=", "notin"


def _split(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    terms, depth, cur = [], 0, []
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            terms.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    terms.append("".join(cur))
    return terms


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]
    text: str

    @classmethod
    def parse(cls, text: str) -> Selector:
        reqs = []
        for term in _split(text):
            m = _TERM.match(term)
            if not term.strip() or not m:
                raise GadgetError(
                    f"Cannot read the selector {text!r} at {term.strip()!r}; "
                    "write it as key=value[,key2=value2] (also !=, in (...), notin (...), key, !key)."
                )
            if m["nkey"]:
                reqs.append(Requirement(m["nkey"], "!exists"))
            elif m["op"]:
                reqs.append(Requirement(m["key"], "!=" if m["op"] == "!=" else "=", frozenset([m["value"] or ""])))
            elif m["setop"]:
                values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
                reqs.append(Requirement(m["key"], m["setop"], values))
            else:
                reqs.append(Requirement(m["key"], "exists"))
        return cls(tuple(reqs), text)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)
