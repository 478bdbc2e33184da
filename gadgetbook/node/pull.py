"""Values a node's kernel sends back to the notebook (`%%node --pull`): pickled, then base64 text."""

from __future__ import annotations

import base64
import pickle
from typing import Any


def pack(value: Any) -> str:
    """A value as text that survives a kernel's user_expressions (a DataFrame keeps its dtypes and attrs)."""
    return base64.b64encode(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode()


def unpack(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))  # noqa: S301 - from the user's own node pod, over its token


def expression(name: str) -> str:
    """What the node's kernel evaluates to send `name` back."""
    return f"__import__('gadgetbook.node.pull', fromlist=['pack']).pack({name})"
