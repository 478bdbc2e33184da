"""Kubernetes label selectors as policies write them (matchLabels, matchExpressions), matched against labels."""

from __future__ import annotations

from typing import Any

from gadgetbook.errors import GadgetError


def matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """True when `labels` satisfy the selector; an empty selector selects everything."""
    if not selector:
        return True
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != str(v):
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), [str(v) for v in expr.get("values") or []]
        if op == "In":
            ok = key in labels and labels[key] in values
        elif op == "NotIn":
            ok = key not in labels or labels[key] not in values
        elif op == "Exists":
            ok = key in labels
        elif op == "DoesNotExist":
            ok = key not in labels
        else:
            raise GadgetError(f"A label selector uses the operator {op!r}; Kubernetes knows In, NotIn, Exists and "
                              "DoesNotExist.")
        if not ok:
            return False
    return True
