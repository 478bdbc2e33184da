"""Programs of one's own that the cell tests run (%%bpf and %%bcc), and a workload with a comm of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

from support.leftovers import bpf_fds

# %%bpf: counts opens of MARKER by comm in a hash, and sends one record per open through gadget.h's ring buffer.
OPEN_COUNTER = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "gadget.h"

#define PATH_LEN 64

struct event {
	struct gadget_process proc;
	char path[PATH_LEN];
};

struct comm_key {
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct comm_key);
	__type(value, __u64);
} counts SEC(".maps");

const volatile char marker[PATH_LEN] = "MARKER";

SEC("tracepoint/syscalls/sys_enter_openat")
int count_opens(struct trace_event_raw_sys_enter *ctx)
{
	char path[PATH_LEN] = {};

	if (gadget_should_discard())
		return 0;
	bpf_probe_read_user_str(path, sizeof(path), (const char *)ctx->args[1]);
	for (int i = 0; i < PATH_LEN; i++) {
		if (path[i] != marker[i])
			return 0;
		if (!path[i])
			break;
	}
	struct comm_key key = {};
	__u64 one = 1, *n;

	bpf_get_current_comm(key.comm, sizeof(key.comm));
	n = bpf_map_lookup_elem(&counts, &key);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);

	struct event *e = gadget_reserve(sizeof(*e));

	if (!e)
		return 0;
	gadget_fill_process(&e->proc);
	__builtin_memcpy(e->path, path, sizeof(path));
	gadget_submit(e);
	return 0;
}
"""

# %%bcc: the same with bcc's TRACEPOINT_PROBE, a perf buffer and a hash keyed by comm. The path is compared
# 8 bytes at a time with constants (MATCH): compared char by char with a constant string, clang folds the
# tests into arithmetic whose states the verifier cannot finish exploring.
BCC_OPEN_COUNTER = r"""
#define PATH_LEN 64

struct event {
	u32 pid;
	char comm[16];
	char path[PATH_LEN];
};

struct comm_key {
	char comm[16];
};

BPF_PERF_OUTPUT(events);
BPF_HASH(counts, struct comm_key, u64);

TRACEPOINT_PROBE(syscalls, sys_enter_openat)
{
	struct event e = {};
	u64 w[PATH_LEN / 8] = {};

	bpf_probe_read_user_str(w, sizeof(w), args->filename);
	if (!(MATCH))
		return 0;
	__builtin_memcpy(e.path, w, sizeof(e.path));
	struct comm_key key = {};

	bpf_get_current_comm(&key.comm, sizeof(key.comm));
	counts.increment(key);
	e.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(&e.comm, sizeof(e.comm));
	events.perf_submit(args, &e, sizeof(e));
	return 0;
}
"""


# %%bpf: the lengths of the paths opened, as a log2 histogram twice over (a `slots[]` value, and a hash keyed
# by the slot), and a per-CPU count of the opens.
LENGTHS = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "gadget.h"

#define PATH_LEN 64

struct hist {
	__u32 slots[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} name_lengths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} length_dist SEC(".maps");

static __always_inline __u32 log2(__u32 v)
{
	__u32 r = 0;

	for (int i = 0; i < 32 && v > 1; i++) {
		v >>= 1;
		r++;
	}
	return r;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int lengths(struct trace_event_raw_sys_enter *ctx)
{
	char path[PATH_LEN];
	__u32 zero = 0;

	if (gadget_should_discard())
		return 0;
	long len = bpf_probe_read_user_str(path, sizeof(path), (const char *)ctx->args[1]);
	if (len <= 0)
		return 0;
	__u32 slot = log2(len);
	struct hist *h = bpf_map_lookup_elem(&name_lengths, &zero);
	if (h && slot < 32)
		__sync_fetch_and_add(&h->slots[slot], 1);
	__u64 *n = bpf_map_lookup_elem(&calls, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	__u64 one = 1, *c = bpf_map_lookup_elem(&length_dist, &slot);
	if (c)
		__sync_fetch_and_add(c, 1);
	else
		bpf_map_update_elem(&length_dist, &slot, &one, BPF_NOEXIST);
	return 0;
}
"""


def open_and_conclude(run, path, times: int, settle: float = 1.0):
    """Open `path` `times` times while the run goes on, let its interval readings happen, then stop it and
    return its result."""
    with run:
        for _ in range(times):
            os.close(os.open(path, os.O_RDONLY))
        time.sleep(settle)
        run.stop()
    return run.conclude()


def with_marker(program: str, marker: str) -> str:
    """The program looking for `marker`: in a string (MARKER), or as the words of a 64-byte buffer (MATCH)."""
    assert len(marker) < 60
    raw = marker.encode().ljust(64, b"\0")
    words = [int.from_bytes(raw[i:i + 8], "little") for i in range(0, 64, 8)]
    match = " && ".join(f"w[{i}] == {w:#x}ULL" for i, w in enumerate(words))
    return program.replace("MARKER", marker).replace("MATCH", match)


def own_cat(directory: Path) -> Path:
    """A copy of cat under a name of its own: its comm tells its opens from everyone else's."""
    path = Path(directory) / f"gbc-{uuid.uuid4().hex[:8]}"
    shutil.copy("/bin/cat", path)
    return path


def open_times(cat: Path, path: str, times: int) -> None:
    for _ in range(times):
        subprocess.run([str(cat), path], capture_output=True, check=False)


def when_attached(action, timeout: float = 60.0) -> threading.Thread:
    """Run `action` on a thread once this process holds a BPF link (the program is attached)."""
    before = {fd for fd, kind in bpf_fds() if kind == "bpf_link"}

    def wait_then_act():
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if {fd for fd, kind in bpf_fds() if kind == "bpf_link"} - before:
                action()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=wait_then_act, daemon=True)
    thread.start()
    return thread


def pid_of_self() -> int:
    return os.getpid()
