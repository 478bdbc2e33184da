"""The live run's Stop button: a small anywidget that ends the run by a message and by a kernel interrupt."""

from __future__ import annotations

import os
import re
from pathlib import Path

import anywidget
import traitlets


def kernel_id() -> str:
    """This kernel's id as the Jupyter server knows it (its connection file is kernel-<id>.json)."""
    try:
        from ipykernel.connect import get_connection_file

        name = os.path.basename(get_connection_file())
    except Exception:  # noqa: BLE001 - not in a kernel, or one started some other way
        return ""
    m = re.fullmatch(r"kernel-(.+)\.json", name)
    return m.group(1) if m else ""


class StopButton(anywidget.AnyWidget):
    _esm = Path(__file__).with_name("stop_button.js")
    kernel_id = traitlets.Unicode("").tag(sync=True)
    running = traitlets.Bool(True).tag(sync=True)
    clicked = traitlets.Int(0).tag(sync=True)
