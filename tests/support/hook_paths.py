"""Running a gadget through one of its hook paths on purpose: its first choice, or its fallback (the loader
told to pass over the first choice, as on a kernel without it), checking which programs were attached."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import gadgetbook
from gadgetbook.kernel.loader import AVOID_ENV


def starter(gadget: str, monkeypatch, attached: Sequence[str], avoid: Sequence[str] = ()) -> Callable:
    """`gadgetbook.start(gadget, ...)` that passes over the programs in `avoid` and checks that exactly the
    programs in `attached` went onto their hooks."""
    if avoid:
        monkeypatch.setenv(AVOID_ENV, ",".join(avoid))

    def begin(**kwargs):
        r = gadgetbook.start(gadget, **kwargs)
        assert sorted(r.sources[0].obj.attached) == sorted(attached)
        return r

    return begin
