"""%%bpf, %%bcc and their errors in a notebook executed for real (nbclient, a real kernel, as root): what the
saved notebook keeps is static (summary, tables, the histogram's PNG), the live widget is gone, warnings and
marked compile errors show in the cell's output."""

import json

import nbformat
import pytest
from support.cells import BCC_OPEN_COUNTER, LENGTHS, OPEN_COUNTER, with_marker
from support.kernel_headers import debian_headers
from support.workloads import marker

from tests.notebooks.test_notebooks import jupyter_env, notebook_client, outputs  # noqa: F401

pytestmark = pytest.mark.root

HIST = "%%bpf --local --timeout 2 --pid {pid} --name lengths\n" + LENGTHS


def _notebook(cells: list[tuple[str, list[str]]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source, tags in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.metadata["tags"] = tags
        nb.cells.append(cell)
    return nb


def _execute(nb, workdir):
    notebook_client(nb, workdir).execute()
    nbformat.write(nb, workdir / "executed-cells.ipynb")
    return nb


def test_bpf_cells_leave_static_results_and_marked_errors(jupyter_env):  # noqa: F811
    path = f"/tmp/{marker('gb-nb')}"
    nb = _notebook([
        ("%load_ext gadgetbook\nimport os, threading, time\npid = os.getpid()", []),
        (f"def opens():\n    for _ in range(100):\n        open({path!r}, 'w').close()\n        time.sleep(0.1)\n"
         "threading.Thread(target=opens, daemon=True).start()", []),
        (f"%%bpf --local --timeout 2 --pid {{pid}}\n{with_marker(OPEN_COUNTER, path)}", ["bare"]),
        (HIST, ["named"]),
        ("print(len(lengths['name_lengths']), lengths.histograms)", []),
        ("%%bpf --local\n#include \"vmlinux.h\"\nint broken = undefined_thing;\n", ["raises-exception"]),
    ])
    nb = _execute(nb, jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    bare = next(c for c in code if "bare" in c.metadata.tags)
    result = next(o for o in bare.outputs if o.output_type == "execute_result")
    html = result.data["text/html"]
    assert "gadgetbook-program" in html and "events" in html and "map counts" in html
    assert "cell: " in html and 'class="gadgetbook-summary"' in html
    # The live view gave way to the cell's value, which shows the tables once; no widget is left.
    shown = [o for o in bare.outputs if o.output_type == "display_data"]
    assert shown and all("application/vnd.jupyter.widget-view+json" not in o.data for o in shown)
    assert not any("<table" in o.data.get("text/html", "") for o in shown)
    named = next(c for c in code if "named" in c.metadata.tags)
    final = "".join(o.data.get("text/html", "") for o in named.outputs if o.output_type == "display_data")
    assert "lengths: ran" in final and "map name_lengths" in final and 'src="data:image/png;base64,' in final
    assert not any(o.output_type == "execute_result" for o in named.outputs)  # --name: the variable has it
    assert "'name_lengths'" in outputs(code[4]) and "'length_dist'" in outputs(code[4])
    broken = code[5]
    text = "".join(o.get("text", "") for o in broken.outputs) + "".join(
        "\n".join(o.get("traceback", [])) for o in broken.outputs)
    assert "The cell does not compile (1 error):" in text and "> 2 | int broken = undefined_thing;" in text
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    stops = [m for m in state.values() if m["model_name"] == "AnyModel" and "kernel_id" in m["state"]]
    assert stops and all(m["state"]["running"] is False for m in stops)
    assert len(json.dumps(nb)) < 2_000_000


def test_a_bcc_cell_shows_the_headers_warning_then_its_result(jupyter_env):  # noqa: F811
    path = f"/tmp/{marker('gb-nb-bcc')}"
    nb = _notebook([
        ("%load_ext gadgetbook", []),
        (f"%%bcc --local --timeout 1\n{with_marker(BCC_OPEN_COUNTER, path)}", ["bcc"]),
    ])
    with debian_headers() as version:
        nb = _execute(nb, jupyter_env)
    cell = next(c for c in nb.cells if "bcc" in c.metadata.get("tags", []))
    streams = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    assert streams and streams[0].text.startswith("warning: The kernel headers in")
    assert f"are for {version}, not the running" in streams[0].text
    first_stream = cell.outputs.index(streams[0])
    result = next(i for i, o in enumerate(cell.outputs) if o.output_type == "execute_result")
    assert first_stream < result  # the warning came before the run
    assert "cell: 0 events in 1." in cell.outputs[result].data["text/html"]
