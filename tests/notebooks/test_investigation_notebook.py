"""The investigation notebook runs as root and shows what it says: joins, the timeline (widget and image), the
diff of two runs of the lab app, the policy check, and a run streamed to a dataset."""

import os
from pathlib import Path

import pytest

from tests.notebooks.test_notebooks import execute, jupyter_env, outputs  # noqa: F401

pytestmark = [pytest.mark.root, pytest.mark.containers]
NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "investigation.ipynb"


def test_investigation_notebook_shows_its_findings(jupyter_env):  # noqa: F811
    nb = execute(NOTEBOOK, jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    text = "\n".join(outputs(c) for c in code)
    assert "web.lab.test" in text and "api.lab.test" in text  # remote_name and the DNS table
    assert "worker: new executables: /bin/hostname; new peers: web:8080" in text
    assert "connections would have been refused" in text and "0 of " in text
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    timelines = [m["state"] for m in state.values() if m["model_name"] == "AnyModel" and "lanes" in m["state"]]
    assert timelines and all(len(t["lanes"]) == 5 for t in timelines[:2])
    assert sum(1 for c in code for o in c.get("outputs", []) if o.get("data", {}).get("image/png")) >= 2
    assert os.path.getsize(jupyter_env / "executed-investigation.ipynb") < 5_000_000
