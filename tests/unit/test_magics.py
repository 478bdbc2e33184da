"""%gadget through a real IPython InteractiveShell: parsing, assignment, errors, %config."""

import os
import re

import pandas as pd
import pytest
from IPython import get_ipython as running_ipython
from IPython.core.error import UsageError
from IPython.testing.globalipapp import get_ipython

NO_PID = int(open("/proc/sys/kernel/pid_max").read())  # process ids stay below pid_max: none has this one


@pytest.fixture(scope="module")
def ip():
    shell = get_ipython() or running_ipython()  # the test shell, started here or by an earlier test module
    shell.run_line_magic("load_ext", "gadgetbook")
    return shell


def magic(ip, line):
    return ip.run_line_magic("gadget", line)


@pytest.mark.parametrize("line,message", [
    ("nope", "Unknown gadget or command 'nope'. Known gadgets:"),
    ("opensnop --timeout 1", "Unknown gadget or command 'opensnop'. Did you mean opensnoop?"),
    ("lst", "Did you mean list?"),
    ("opensnoop --faild", "unrecognized arguments: --faild (did you mean --failed?)"),
    ("opensnoop --timeout soon", "Cannot read the duration 'soon'"),
    ("opensnoop --frobnicate", "%gadget opensnoop: unrecognized arguments: --frobnicate"),
    ("opensnoop -l 'app in api'", "Cannot read the selector"),
    ("describe", "Name one gadget to describe"),
    ("replay /nonexistent/run.parquet", "No recording at /nonexistent/run.parquet"),
    ("opensnoop 'unclosed", "cannot split the line"),
    ("opensnoop --pid -7", "--pid takes a process id, a positive whole number (got -7)."),
    (f"opensnoop --pid {NO_PID}", f"No process {NO_PID} runs on this host"),
    ("opensnoop --save /proc/nope/x.parquet", "Cannot save to /proc/nope/x.parquet: /proc does not take new files"),
    ("capabilities --caps sys_admn", "--caps: 'sys_admn' is not a capability name; use names such as CAP_CHOWN"),
    ("advise capabilties -l app=x", "Name what to advise: %gadget advise network-policy | capabilities"),
    ("advise capabilities", "name the workloads to watch with -l SELECTOR or -c NAME"),
])
def test_bad_input_raises_usage_error(ip, line, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        magic(ip, line)


def test_list_and_describe(ip, capsys):
    magic(ip, "list")
    assert "opensnoop" in capsys.readouterr().out
    magic(ip, "describe execsnoop")
    assert "args_truncated" in capsys.readouterr().out


def test_docstring_documents_config(ip):
    doc = ip.find_line_magic("gadget").__doc__
    assert "%config GadgetMagics.timeout" in doc and "max_live_rows" in doc and "GadgetMagics.local" in doc
    assert "Usage::" not in doc


def test_bare_magic_prints_a_short_overview_with_the_common_flags(ip, capsys):
    magic(ip, "")
    out = capsys.readouterr().out
    for flag in ("--timeout", "-l SELECTOR", "--local", "--save", "-A"):
        assert flag in out
    assert "%gadget execsnoop" in out and "you press Stop" in out and "Ctrl-C" not in out
    assert len(out.splitlines()) < 30


def test_gadget_help_is_in_notebook_words(ip, capsys):
    magic(ip, "opensnoop --help")
    out = " ".join(capsys.readouterr().out.split())
    assert "until you press Stop" in out and "Ctrl-C" not in out and "--output" not in out
    assert "--local" in out and "node pods are left out" in out


@pytest.mark.root
def test_assignment_and_config_timeout(ip, tmp_path):
    ip.run_line_magic("config", "GadgetMagics.timeout = 0.5")
    try:
        path = tmp_path / "seen"
        ip.user_ns["gb_path"] = str(path)
        ip.run_cell(f"df = %gadget opensnoop --pid {os.getpid()}\n")
        df = ip.user_ns["df"]
    finally:
        ip.run_line_magic("config", "GadgetMagics.timeout = None")
    assert isinstance(df, pd.DataFrame) and df.attrs["gadget"] == "opensnoop"
    assert df.attrs["params"] == {"failed": False}
    assert 0.4 < df.attrs["end"] - df.attrs["start"] < 5


@pytest.mark.root
def test_save_then_replay_is_the_same_frame(ip, tmp_path):
    rec = tmp_path / "runs" / "open.parquet"
    marker = tmp_path / "marker"
    ip.run_cell(f"import threading, time\n"
                f"threading.Timer(0.2, lambda: open({str(marker)!r}, 'w').close()).start()\n"
                f"df = %gadget opensnoop --pid {os.getpid()} --timeout 1 --save {rec}\n")
    df = ip.user_ns["df"]
    assert str(marker) in set(df.path)
    again = magic(ip, f"replay {rec}")
    pd.testing.assert_frame_equal(again, df)
    assert again.attrs == df.attrs


@pytest.mark.root
def test_bare_call_displays_the_frame_and_leaves_it_in_underscore(ip):
    result = ip.run_cell(f"%gadget opensnoop --pid {os.getpid()} --timeout 0.3")
    assert result.success
    assert isinstance(result.result, pd.DataFrame) and result.result.attrs["gadget"] == "opensnoop"
    assert ip.user_ns["_"] is result.result


@pytest.mark.root
def test_config_local_keeps_runs_and_investigations_on_this_host(ip, tmp_path, monkeypatch):
    # A kubeconfig whose API server does not answer: with GadgetMagics.local a selector means this host's
    # containers (none matches this one), and nothing goes to the cluster.
    from tests.notebooks.test_notebooks import UNREACHABLE_KUBECONFIG

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNREACHABLE_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    ip.run_line_magic("config", "GadgetMagics.local = True")
    selector = f"gadgetbook-test={os.getpid()}-none"
    try:
        for line in (f"opensnoop -l {selector} --timeout 0.3",
                     f"investigate execsnoop,opensnoop -l {selector} --timeout 0.3"):
            with pytest.raises(UsageError) as raised:
                magic(ip, line)
            assert "Kubernetes" not in str(raised.value) and "container" in str(raised.value), str(raised.value)
    finally:
        ip.run_line_magic("config", "GadgetMagics.local = False")
