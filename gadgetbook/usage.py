"""What the front ends say about themselves, in their own words: the commands, the common flags and examples,
for a terminal (`gadgetbook --help`) and for a notebook (`%gadget` alone)."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class Words:
    """How a front end names things: its prefix and how a run is stopped."""

    prefix: str  # "gadgetbook" or "%gadget"
    stop: str  # how a run without --timeout ends

    @property
    def notebook(self) -> bool:
        return self.prefix.startswith("%")


TERMINAL = Words("gadgetbook", "Ctrl-C")
NOTEBOOK = Words("%gadget", "you press Stop (or interrupt the kernel)")

def commands(words: Words) -> tuple[tuple[str, str], ...]:
    """(syntax, what it does) of the front end's commands."""
    # A notebook replays with %gadget replay; its programs of one's own are the cell magics %%bpf and %%bcc.
    not_here = ("bpf ", "bcc ") if words.notebook else ("replay",)
    return tuple(c for c in _COMMANDS if not c[0].startswith(not_here))


_COMMANDS = (
    ("list", "the gadgets this installation carries"),
    ("describe GADGET", "a gadget's parameters, columns and hooks"),
    ("GADGET [flags]", "run a gadget (GADGET --help for all its flags)"),
    ("replay PATH.parquet", "a recording, without a kernel or root"),
    ("advise WHAT -l SELECTOR", "least privilege from what was seen (network-policy, capabilities, seccomp-profile)"),
    ("traceloop start|show|stop|list", "a flight recorder of syscalls per container, in the background"),
    ("investigate G1,G2,... [flags]", "several gadgets on the same targets, joined on one clock"),
    ("diff BEFORE AFTER", "what is new or gone per workload between two recordings"),
    ("check network-policy YAML RUN", "the recorded connections a NetworkPolicy would have refused"),
    ("deploy | undeploy | status", "gadgetbook's node pods in a Kubernetes cluster"),
    ("bpf FILE.bpf.c [flags]", "compile and run a CO-RE BPF C program of your own (%%bpf in a notebook)"),
    ("bcc FILE.c [flags]", "run a bcc program of your own on this host (%%bcc in a notebook)"),
)
COMMAND_WORDS = ("list", "describe", "replay", "advise", "investigate", "diff", "check", "deploy", "undeploy",
                 "status", "manifests", "help")


def timeout_help(words: Words) -> str:
    return f"stop after this long (10, 10s, 2m, 500ms); default: until {words.stop}"


# (flag, meaning) of the flags every gadget takes, in the order people reach for them.
def common_flags(words: Words) -> tuple[tuple[str, str], ...]:
    return (
        ("--timeout DURATION", timeout_help(words)),
        ("-l SELECTOR", "only containers (or pods) whose labels match: app=api,tier!=db"),
        ("-c NAME", "only the container with this name"),
        ("--pid PID", "only this process (this host)"),
        ("--save PATH.parquet", "also record the events; replay them anywhere"),
        ("--local", "trace this host even where a kubeconfig is found"),
        ("-n NAMESPACE / -A", "pods in a namespace / in all of them (gadgetbook's own pods left out)"),
    )


def examples(words: Words) -> tuple[str, ...]:
    p = words.prefix
    if words.notebook:
        return (f"execs = {p} execsnoop --timeout 10",
                f"{p} opensnoop --failed --local --timeout 5 --save runs/opens.parquet",
                f"{p} tcptracer -n shop -l app=api --timeout 30",
                f"prof = {p} profile --pid 1234 --timeout 5")
    return (f"{p} execsnoop --timeout 10",
            f"{p} opensnoop --failed -o json --timeout 5s",
            f"{p} tcptracer -n shop -l app=api --timeout 30s")


def overview_text(words: Words) -> str:
    p = words.prefix
    lines = ["usage:"] + [f"  {p} {syntax:<36} {what}" for syntax, what in commands(words)]
    lines += ["", "common flags:"] + [f"  {flag:<22} {what}" for flag, what in common_flags(words)]
    lines += ["", "examples:"] + [f"  {e}" for e in examples(words)]
    if words.notebook:
        lines += ["", "Where: a cluster when a kubeconfig is found, else this host; every header says which.",
                  "Defaults: %config GadgetMagics.timeout = 10, GadgetMagics.local = True (see %gadget?)."]
    else:
        lines += ["", "Where: a cluster when a kubeconfig is found, else this host (--local to insist)."]
    return "\n".join(lines)


def overview_html(words: Words) -> str:
    """The overview as a compact HTML block for a notebook."""
    esc = html.escape

    def rows(pairs):
        return "".join(f"<tr><td><code>{esc(a)}</code></td><td>{esc(b)}</td></tr>" for a, b in pairs)

    p = words.prefix
    style = "text-align:left; padding:1px 12px 1px 0; vertical-align:top"
    table = '<table class="gadgetbook-help" style="border-collapse:collapse">'
    ex = "".join(f"<div><code>{esc(e)}</code></div>" for e in examples(words))
    return (
        '<div class="gadgetbook-help">'
        f"<style>table.gadgetbook-help td {{ {style} }}</style>"
        f"<b>{esc(p)}</b>: eBPF gadgets whose events land in pandas DataFrames. Runs go to a cluster when a "
        "kubeconfig is found, else to this host; every header says which."
        f"{table}{rows((f'{p} {s}', w) for s, w in commands(words))}</table>"
        f"<b>Common flags</b>{table}{rows(common_flags(words))}</table>"
        f"<b>Examples</b>{ex}"
        "<div>Defaults for this notebook: <code>%config GadgetMagics.timeout = 10</code>, "
        "<code>%config GadgetMagics.local = True</code>; more with <code>%gadget?</code>.</div></div>"
    )
