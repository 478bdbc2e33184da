"""%gadget investigate, diff and check through a real IPython InteractiveShell: bad input is one UsageError
sentence, and saved investigations come back through the magics (no kernel, no root)."""

import pandas as pd
import pytest
from IPython import get_ipython as running_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython

from gadgetbook.investigation import Investigation


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython() or running_ipython()  # the test shell, started here or by an earlier test module
    shell.run_line_magic("load_ext", "gadgetbook")
    return shell


@pytest.mark.parametrize("line, message", [
    ("investigate execsnoop,nope", "Unknown gadget 'nope'"),
    ("investigate execsnoop,execsnoop", "execsnoop appears more than once"),
    ("investigate execsnoop --param failed", "--param takes GADGET.NAME=VALUE"),
    ("investigate execsnoop --param dns.port=53", "Params are given for dns"),
    ("diff only-one", "Use %gadget diff BEFORE AFTER"),
    ("check network-policy p.yaml", "Use %gadget diff BEFORE AFTER, or %gadget check network-policy"),
])
def test_bad_input_is_one_usage_error(ip, line, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(")) as err:
        ip.run_line_magic("gadget", line)
    assert "\n" not in str(err.value)


def _inv(exe: str) -> Investigation:
    t = pd.Timestamp("2026-12-01 12:00:00")
    df = pd.DataFrame({"timestamp": [t], "node": ["n"], "namespace": [""], "pod": [""], "container": ["app-1a2b3c4d"],
                       "pid": [1], "comm": ["sh"], "ret": [0], "path": [exe], "args": [exe]})
    df.attrs.update({"gadget": "execsnoop", "targets": "containers app", "version": "0.1.0",
                     "behaviour": [{"what": "executables", "columns": ["exe"], "where": "ret == 0"}]})
    return Investigation({"execsnoop": df}, {"targets": "containers app"})


def test_diff_of_saved_investigations_through_the_magic(ip, tmp_path):
    _inv("/bin/sh").save(tmp_path / "before")
    _inv("/bin/nc").save(tmp_path / "after")
    d = ip.run_line_magic("gadget", f"diff {tmp_path / 'before'} {tmp_path / 'after'}")
    assert d.summary() == "app: gone executables: /bin/sh; new executables: /bin/nc"
    again = ip.run_line_magic("gadget", f"replay {tmp_path / 'after'}")
    assert isinstance(again, Investigation) and again["execsnoop"]["path"].tolist() == ["/bin/nc"]
