"""An investigation while it runs in a notebook: one counters line per gadget and a Stop button for all."""

from __future__ import annotations

import html
import time


def _line(gadget: str, run) -> str:
    c = run.counters
    failed = f" &middot; failed on {html.escape(', '.join(c.errors))}" if c.errors else ""
    return (f"<div><b>{html.escape(gadget)}</b> &middot; {c.events:,} events &middot; {c.lost_total:,} lost"
            f"{failed}</div>")


def watch_investigation(live, refresh: float = 0.25) -> None:
    """Show the counters until every gadget ends, the Stop button is pressed, or the kernel is interrupted."""
    import ipywidgets as w
    from IPython.display import HTML, display

    from gadgetbook.views.stop_button import StopButton, kernel_id

    stop = StopButton(kernel_id=kernel_id())
    counters = w.HTML()
    box = w.VBox([w.HBox([stop, w.HTML(f"<b>investigating {html.escape(live.facts.get('targets') or '')}</b>")]),
                  counters])
    handle = display(box, display_id=True)
    failed = "".join(f"<div><b>{html.escape(g)}</b> did not start: {html.escape(e)}</div>"
                     for g, e in live.failed.items())

    def render() -> None:
        counters.value = "".join(_line(g, r) for g, r in live.runs.items()) + failed

    try:
        while live.running:
            render()
            if stop.clicked:
                live.stop()
            time.sleep(refresh)
    except KeyboardInterrupt:
        live.stop()
    stop.running = False
    render()
    handle.update(HTML(f'<div class="gadgetbook-final">{counters.value}</div>'))
    box.close()
