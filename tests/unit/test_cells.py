"""Programs of one's own without loading anything: compiling with clang against this kernel's BTF, finding the
record struct, the compiler's messages on the cell's lines, bcc's headers check and prelude, and the magics'
bad input through a real IPython shell."""

import os
import textwrap

import numpy as np
import pytest
from IPython.core.error import UsageError
from support.shell import gadgetbook_shell

from gadgetbook.errors import GadgetError
from gadgetbook.programs.bcc_host import cell_diagnostics, kernel_headers, prelude
from gadgetbook.programs.compile import (
    CompileError,
    cell_text,
    compile_program,
    defined_structs,
    host_vmlinux,
)
from gadgetbook.programs.maps import log2_bucket
from gadgetbook.programs.spec import program_spec

HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n'


def build(body: str, **kw):
    source = HEAD + textwrap.dedent(body)
    vmlinux, _ = host_vmlinux()
    compiled = compile_program(source, vmlinux)
    return program_spec(compiled.path, cell_structs=defined_structs(source), **kw)


RING = """
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} rb SEC(".maps");
"""


def test_the_one_struct_the_cell_defines_is_the_record_even_when_only_a_local_uses_it():
    spec = build(RING + """
        struct hit { __u32 pid; char comm[16]; __u64 when; };
        SEC("tracepoint/syscalls/sys_enter_openat")
        int h(void *ctx) {
            struct hit *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
            if (e) bpf_ringbuf_submit(e, 0);
            return 0;
        }
    """)
    assert spec.record == "hit" and spec.ring == "rb"
    dtype, columns, common = spec.layout
    assert [c.name for c in columns] == ["pid", "comm", "when"] and common == ()
    assert dtype.itemsize == 32 and dtype["comm"] == np.dtype("S16")


def test_map_keys_and_values_are_not_candidates_and_two_records_need_a_name():
    body = RING + """
        struct pid_key { __u32 pid; };
        struct a { __u32 x; };
        struct b { __u64 y; };
        struct {
            __uint(type, BPF_MAP_TYPE_HASH);
            __uint(max_entries, 8);
            __type(key, struct pid_key);
            __type(value, __u64);
        } counts SEC(".maps");
        SEC("tracepoint/syscalls/sys_enter_openat")
        int h(void *ctx) { return 0; }
    """
    with pytest.raises(GadgetError, match=r"^The cell defines the structs a, b; name the ring buffer's record "
                                          r"with --event NAME\.$"):
        build(body)
    assert build(body, event="b").record == "b"
    with pytest.raises(GadgetError, match=r"--event c: the program defines no struct c; its structs: pid_key, a, b\."):
        build(body, event="c")


def test_a_perf_event_array_is_refused_in_one_sentence():
    with pytest.raises(GadgetError, match="perf event array \\(events\\); gadgetbook reads ring buffers"):
        build("""
            struct {
                __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
                __uint(key_size, sizeof(__u32));
                __uint(value_size, sizeof(__u32));
            } events SEC(".maps");
            SEC("tracepoint/syscalls/sys_enter_openat")
            int h(void *ctx) { return 0; }
        """)


def test_a_program_of_maps_only_has_no_record():
    spec = build("""
        struct {
            __uint(type, BPF_MAP_TYPE_ARRAY);
            __uint(max_entries, 1);
            __type(key, __u32);
            __type(value, __u64);
        } calls SEC(".maps");
        SEC("tracepoint/syscalls/sys_enter_openat")
        int h(void *ctx) { return 0; }
    """)
    assert spec.record is None and spec.ring is None and "calls" in spec.maps


def test_lines_are_only_added_after_the_cell():
    source = HEAD + "/* struct not_this { int x; }; */\nstruct ev { int x; };\n"
    assert defined_structs(source) == ["ev"]
    text = cell_text(source)
    assert text.startswith(source) and "_gadgetbook_struct_ev" in text
    assert '__attribute__((section("license"), used)) = "GPL"' in text
    licensed = source + 'char LICENSE[] SEC("license") = "Dual BSD/GPL";\n'
    assert '"GPL";' not in cell_text(licensed).removeprefix(licensed)


def test_a_compile_error_marks_the_line_under_its_column():
    source = HEAD + "int x = y;\n"
    vmlinux, _ = host_vmlinux()
    with pytest.raises(CompileError) as err:
        compile_program(source, vmlinux)
    lines = str(err.value).splitlines()
    assert lines[:2] == ["The cell does not compile (1 error):", "line 3: use of undeclared identifier 'y'"]
    assert lines[3] == "  > 3 | int x = y;" and lines[4] == "      |         ^"


def test_log2_buckets_of_both_conventions():
    low, high = log2_bucket(np.array([0, 1, 5]), "libbpf")
    assert low.tolist() == [0, 2, 32] and high.tolist() == [1, 3, 63]
    low, high = log2_bucket(np.array([0, 1, 6]), "bcc")
    assert low.tolist() == [0, 1, 32] and high.tolist() == [0, 1, 63]


def test_bcc_messages_find_the_cells_line_below_an_inserted_tracepoint_struct():
    cell = "BPF_HASH(x);\nTRACEPOINT_PROBE(a, b)\n{\n\tint y = z;\n\treturn 0;\n}\n"
    output = ("cell.bpf.c:14:10: error: use of undeclared identifier 'z'\n"
              "        int y = z;\n"
              "                ^\n1 error generated.\n")
    (d,) = cell_diagnostics(output, cell)
    assert (d.line, d.message) == (4, "use of undeclared identifier 'z'")


def test_bcc_headers_missing_or_of_another_kernel(tmp_path, monkeypatch):
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path / "none"))
    with pytest.raises(GadgetError, match=r"^bcc compiles against the running kernel's headers and there are none"):
        kernel_headers()
    (tmp_path / "include" / "generated").mkdir(parents=True)
    (tmp_path / "include" / "generated" / "utsrelease.h").write_text('#define UTS_RELEASE "6.1.0-57-amd64"\n')
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path))
    headers = kernel_headers()
    assert headers.release == "6.1.0-57-amd64"
    assert headers.mismatch.startswith(f"The kernel headers in {tmp_path} are for 6.1.0-57-amd64, not the running "
                                       f"{os.uname().release}: tracepoint arguments are right")


def test_the_bcc_prelude_keeps_the_cells_numbering_and_wraps_probes_only_when_filtering():
    plain = prelude(cgroups=False, pid=None)
    assert plain.rstrip().endswith('#line 1 "cell.bpf.c"') and "TRACEPOINT_PROBE" not in plain
    filtered = prelude(cgroups=True, pid=42)
    assert "bpf_get_current_cgroup_id()" in filtered and "!= 42" in filtered
    assert "#define TRACEPOINT_PROBE(category, event)" in filtered


@pytest.fixture(scope="module")
def ip():
    return gadgetbook_shell()


@pytest.mark.parametrize("magic,line,cell,message", [
    ("bpf", "--frobnicate", "int x;", "%%bpf: unrecognized arguments: --frobnicate"),
    ("bpf", "--local", "   \n", "The cell is empty: write a BPF C program in it"),
    ("bpf", "--local --name 1x", "int x;", "--name '1x' is not a Python variable name"),
    ("bpf", "--local --timeout soon", "int x;", "Cannot read the duration 'soon'"),
    ("bcc", "-n shop", "int x;", "No kubeconfig found"),
    ("bcc", "--local -n shop", "int x;", "--local traces this host; it does not go with namespace"),
    ("bcc", "--events", "int x;", "%%bcc: argument --events: expected one argument"),
    ("node", "", "print(1)", "%%node: the following arguments are required: NODE"),
    ("node", "n1 --pull 'a b'", "print(1)", "No kubeconfig found|--pull takes variable names"),
])
def test_bad_input_is_one_sentence(ip, magic, line, cell, message, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    monkeypatch.setenv("HOME", "/nonexistent")
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        ip.run_cell_magic(magic, line, cell)


def test_the_magics_document_themselves(ip):
    for name in ("bpf", "bcc", "node"):
        doc = ip.find_cell_magic(name).__doc__
        assert "Usage::" in doc
