"""A verifier rejection told about the cell: the line it refused (from the object's line info) and why, then
the verifier's last lines rather than its whole log."""

from __future__ import annotations

import re

from gadgetbook.kernel.loader import LoadError

# With -g, the verifier prints `; <source text> @ cell.bpf.c:<line>` before the instructions of each line.
_SOURCE_LINE = re.compile(r"^; (?P<text>.*?) @ (?P<file>[^:\s]+):(?P<line>\d+)$")


def explain(error: LoadError, what: str = "the program") -> str:
    lines = error.verifier
    if not lines:
        return str(error)
    where = None
    for line in lines:
        m = _SOURCE_LINE.match(line.strip())
        if m and int(m["line"]) > 0:
            where = m
    reason = next((line.strip() for line in reversed(lines)
                   if line.strip() and not line.startswith(("processed ", ";")) and not re.match(r"^\d+: ", line)),
                  "")
    at = f" at line {where['line']} ({where['text'].strip()})" if where else ""
    head = f"The kernel's verifier refused {what}{at}: {reason}." if reason else f"The kernel refused {what}{at}."
    shown = "\n".join(f"  {line}" for line in lines)
    return f"{head}\nThe verifier's last lines:\n{shown}"
