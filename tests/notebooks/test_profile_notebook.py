"""The profile notebook runs as root and keeps its flame graphs: widget state and static PNGs."""

from pathlib import Path

import pytest

from tests.notebooks.test_notebooks import execute, jupyter_env, outputs  # noqa: F401

pytestmark = pytest.mark.root
NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "profile.ipynb"


def test_profile_notebook_shows_flame_graphs(jupyter_env):  # noqa: F811
    nb = execute(NOTEBOOK, jupyter_env)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert not [o for c in code for o in c.get("outputs", []) if o.output_type == "error"]
    text = "\n".join(outputs(c) for c in code)
    share = next(line for line in text.splitlines() if "of the samples are in hot_leaf under hot_mid" in line)
    assert int(share.split("%")[0]) >= 80
    pngs = [o for c in code for o in c.get("outputs", []) if o.get("data", {}).get("image/png")]
    assert len(pngs) >= 3  # profile, the whole host and the diff
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    graphs = [m["state"] for m in state.values() if m["model_name"] == "AnyModel" and "zoom" in m["state"]]
    assert any(g.get("search") == "hot_leaf" and g.get("zoom", "").endswith("main;hot_mid") for g in graphs)
    assert (jupyter_env / "runs" / "hotloop-profile.parquet").exists()
