// SPDX-License-Identifier: GPL-2.0
/* profile: on-CPU stacks sampled by a CPU-clock perf event on every CPU.
 *
 * Each sample becomes one ring-buffer record with its time, its kernel stack
 * (the kernel's own unwinder), its user stack and, for CPython, its Python
 * frames. User stacks are unwound here, in the kernel, with tables the user
 * side builds from each binary's .eh_frame (DWARF CFI) and loads into maps:
 * one row per address range saying where the caller's frame and return
 * address are. Code without a table (JIT code, binaries without .eh_frame) is
 * walked through frame pointers. How the walk ended is part of the record, so
 * a stack cut short is marked as such, never shown as complete. */
#include "gadget.h"

#define MAX_USER_FRAMES 127
#define MAX_KERNEL_FRAMES 127
#define MAX_PY_FRAMES 128
#define MAX_MAPPINGS 512
#define MAPPING_STEPS 10 /* log2(MAX_MAPPINGS) + 1 */
#define ROW_STEPS 24     /* tables of up to 16 M rows */
#define MAX_PY_THREADS 256

/* How a user stack walk ended (struct stack_sample.user_end). */
enum user_end {
	END_COMPLETE = 0,    /* reached the outermost frame (return address undefined or 0) */
	END_DEPTH = 1,       /* more frames than MAX_USER_FRAMES */
	END_NO_PROCESS = 2,  /* the user side had not yet loaded this process's tables */
	END_NO_MAPPING = 3,  /* an address outside every known executable mapping */
	END_NO_ROW = 4,      /* an address its binary's table does not cover */
	END_UNSUPPORTED = 5, /* a CFI rule this unwinder does not follow */
	END_READ = 6,        /* the stack could not be read there */
	END_BAD_FRAME = 7,   /* a frame that does not move up the stack */
	END_NOT_ASKED = 8,   /* --kernel-only, or a kernel thread */
};

/* Kinds of unwind rows: where the canonical frame address (CFA) is. */
enum row_kind {
	ROW_RSP = 0,       /* CFA = rsp + cfa_off */
	ROW_RBP = 1,       /* CFA = rbp + cfa_off */
	ROW_PLT = 2,       /* PLT stubs: CFA = rsp + 8, + 8 more past the stub's push (rip & 15 >= cfa_off) */
	ROW_END = 3,       /* the return address is undefined: the outermost frame */
	ROW_UNSUPPORTED = 4,
	ROW_NONE = 5,      /* a gap between functions: no information */
};

/* One row of an unwind table: from `pc` (an address as the binary counts them)
 * up to the next row's pc. The return address is always at CFA - 8 (x86-64);
 * rbp, when the function saved it, at CFA + rbp_off * 8. */
struct unwind_row {
	__u32 pc;
	__u16 cfa_off;
	__s8 rbp_off;
	__u8 kind;
};
/* Named so that BTF keeps it: the user side checks its copy of the layout. */
const struct unwind_row *unwind_row_type __attribute__((unused)) = NULL;

/* One executable mapping of a process. `bias` turns an address into one the
 * binary's table counts (address - bias); table rows == 0 means no table. */
struct exec_mapping {
	__u64 start;
	__u64 end;
	__u64 bias;
	__u32 table;
	__u32 rows;
};

struct process_maps {
	__u32 count;
	__u32 _pad;
	struct exec_mapping m[MAX_MAPPINGS];
};

/* Where a CPython process keeps its threads' frames: addresses and the field
 * offsets of its version (the user side fills them per process). */
struct python_process {
	__u64 interp_head;   /* address of _PyRuntime.interpreters.head */
	__u64 none_object;   /* Py_None (3.13 marks C-entered frames with it), or 0 */
	__u16 threads_head;  /* PyInterpreterState: first thread state */
	__u16 tstate_next;
	__u16 tstate_thread; /* PyThreadState.thread_id: pthread_self(), the thread's fs base */
	__u16 tstate_frame;  /* PyThreadState: frame, cframe or current_frame */
	__u16 cframe_frame;  /* _PyCFrame.current_frame, or 0xffff when tstate_frame is the frame */
	__u16 frame_back;
	__u16 frame_code;
	__u16 frame_flag;    /* is_entry (3.11) or owner (3.12+), or 0xffff (3.9, 3.10: every frame enters) */
	__u8 flag_kind;      /* 0: every frame, 1: is_entry byte, 2: owner == FRAME_OWNED_BY_CSTACK */
	__u8 _pad[7];
};

#define FLAG_EVERY 0
#define FLAG_IS_ENTRY 1
#define FLAG_OWNER 2
#define FRAME_OWNED_BY_CSTACK 3
#define NO_OFFSET 0xffff
/* Low bit of a recorded Python frame: it is the outermost frame of one run of
 * the eval loop (code objects are aligned, so the bit is free). */
#define PY_ENTRY 1

/* How the Python frames were read (struct stack_sample.py_state). */
enum py_state {
	PY_NONE = 0,      /* not a known CPython process */
	PY_OK = 1,
	PY_NO_THREAD = 2, /* no thread state for this thread (not a Python thread) */
	PY_DEPTH = 3,     /* more frames than MAX_PY_FRAMES */
	PY_READ = 4,      /* the interpreter's memory could not be read */
};

struct stack_sample {
	struct gadget_process proc;
	__u16 user_len;
	__u16 kernel_len;
	__u16 py_len;
	__u8 user_end;
	__u8 py_state;
	__u64 user[MAX_USER_FRAMES];
	__u64 kernel[MAX_KERNEL_FRAMES];
	__u64 py[MAX_PY_FRAMES];
};
GADGET_EVENT(stack_sample);

const volatile bool targ_kernel_only = false;
const volatile bool targ_user_only = false;
const volatile bool targ_no_python = false;

/* The user side's tables: one inner array of rows per binary, by slot. */
struct rows_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(struct unwind_row));
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__array(values, struct rows_map);
} unwind_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct process_maps);
} processes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct python_process);
} python_processes SEC(".maps");

/* The record being filled, per CPU (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stack_sample);
} scratch SEC(".maps");

/* The walk's registers, shared with the bpf_loop callback. */
struct walk {
	struct stack_sample *s;
	struct process_maps *maps;
	__u64 ip;
	__u64 sp;
	__u64 bp;
	__u32 done;
};

/* Binary searches run as bpf_loop callbacks: the verifier checks one step
 * once instead of every path through an unrolled search. */
struct search {
	void *base;   /* struct process_maps, or an inner table map */
	__u64 key;
	__u32 lo;
	__u32 hi;
};

static long mapping_step(__u32 i, void *ctx)
{
	struct search *q = ctx;
	struct process_maps *maps = q->base;

	if (q->lo >= q->hi)
		return 1;
	__u32 mid = (q->lo + q->hi) / 2;

	if (maps->m[mid & (MAX_MAPPINGS - 1)].start <= q->key)
		q->lo = mid + 1;
	else
		q->hi = mid;
	return 0;
}

static __always_inline struct exec_mapping *find_mapping(struct process_maps *maps, __u64 ip)
{
	/* The last mapping whose start is <= ip. */
	struct search q = {.base = maps, .key = ip, .hi = maps->count};

	if (q.hi > MAX_MAPPINGS)
		q.hi = MAX_MAPPINGS;
	bpf_loop(MAPPING_STEPS, mapping_step, &q, 0);
	if (q.lo == 0)
		return NULL;
	struct exec_mapping *m = &maps->m[(q.lo - 1) & (MAX_MAPPINGS - 1)];

	return ip < m->end ? m : NULL;
}

static long row_step(__u32 i, void *ctx)
{
	struct search *q = ctx;

	if (q->lo >= q->hi)
		return 1;
	__u32 mid = (q->lo + q->hi) / 2;
	struct unwind_row *r = bpf_map_lookup_elem(q->base, &mid);

	if (!r) {
		q->lo = 0;
		return 1;
	}
	if (r->pc <= q->key)
		q->lo = mid + 1;
	else
		q->hi = mid;
	return 0;
}

/* The row covering pc in a table of n rows (rows sorted by pc), or NULL. */
static __always_inline struct unwind_row *find_row(void *table, __u32 n, __u32 pc)
{
	struct search q = {.base = table, .key = pc, .hi = n};

	bpf_loop(ROW_STEPS, row_step, &q, 0);
	if (q.lo == 0)
		return NULL;
	__u32 at = q.lo - 1;

	return bpf_map_lookup_elem(table, &at);
}

/* One step up through the frame pointer: for code without a table. */
static __always_inline int frame_pointer_step(struct walk *w)
{
	__u64 ra = 0, bp = 0;

	if (w->bp == 0)
		return END_COMPLETE; /* the outermost frame clears rbp */
	if (w->bp < w->sp)
		return END_BAD_FRAME;
	if (bpf_probe_read_user(&bp, sizeof(bp), (void *)w->bp) ||
	    bpf_probe_read_user(&ra, sizeof(ra), (void *)(w->bp + 8)))
		return END_READ;
	w->sp = w->bp + 16;
	w->bp = bp;
	w->ip = ra;
	return -1;
}

/* Code its binary has no CFI for: frame pointers are the best guess, and
 * where they lead nowhere the reason is the missing unwind information. */
static __always_inline int no_table_step(struct walk *w)
{
	int end = frame_pointer_step(w);

	return end == END_BAD_FRAME || end == END_READ ? END_NO_ROW : end;
}

/* One frame: record ip, then find the caller's registers. Returns an end
 * reason, or -1 to go on. */
static __always_inline int unwind_step(struct walk *w, __u32 depth)
{
	struct stack_sample *s = w->s;

	if (depth >= MAX_USER_FRAMES)
		return END_DEPTH;
	s->user[depth] = w->ip;
	s->user_len = depth + 1;

	/* Return addresses point after the call: look up the call itself. */
	__u64 pc = depth ? w->ip - 1 : w->ip;
	struct exec_mapping *m = find_mapping(w->maps, pc);

	if (!m)
		return END_NO_MAPPING;
	if (m->rows == 0)
		return no_table_step(w);

	__u32 slot = m->table;
	void *table = bpf_map_lookup_elem(&unwind_tables, &slot);

	if (!table)
		return END_NO_ROW;
	struct unwind_row *row = find_row(table, m->rows, (__u32)(pc - m->bias));

	if (!row)
		return END_NO_ROW;

	__u64 cfa;

	switch (row->kind) {
	case ROW_RSP:
		cfa = w->sp + row->cfa_off;
		break;
	case ROW_RBP:
		cfa = w->bp + row->cfa_off;
		break;
	case ROW_PLT:
		cfa = w->sp + 8 + ((w->ip & 15) >= row->cfa_off ? 8 : 0);
		break;
	case ROW_END:
		return END_COMPLETE;
	case ROW_NONE:
		return no_table_step(w);
	default:
		return END_UNSUPPORTED;
	}

	__u64 ra = 0;

	if (bpf_probe_read_user(&ra, sizeof(ra), (void *)(cfa - 8)))
		return END_READ;
	if (row->rbp_off) {
		__u64 bp = 0;

		if (bpf_probe_read_user(&bp, sizeof(bp), (void *)(cfa + (__s64)row->rbp_off * 8)))
			return END_READ;
		w->bp = bp;
	}
	if (cfa <= w->sp && depth)
		return END_BAD_FRAME;
	w->sp = cfa;
	w->ip = ra;
	return -1;
}

static long unwind_callback(__u32 depth, void *ctx)
{
	struct walk *w = ctx;

	if (w->ip == 0) {
		w->s->user_end = END_COMPLETE;
		w->done = 1;
		return 1;
	}
	int end = unwind_step(w, depth);

	if (end >= 0) {
		w->s->user_end = end;
		w->done = 1;
		return 1;
	}
	return 0;
}

static __always_inline void unwind_user(struct bpf_perf_event_data *ctx, struct stack_sample *s, __u32 pid)
{
	struct walk w = {.s = s, .ip = ctx->regs.ip, .sp = ctx->regs.sp, .bp = ctx->regs.bp};

	/* Sampled in the kernel: the user registers are those saved on entry. */
	__u64 cs = *(volatile __u64 *)&ctx->regs.cs; /* the context is read in whole words only */

	if ((cs & 3) != 3) {
		struct pt_regs *user = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		w.ip = BPF_CORE_READ(user, ip);
		w.sp = BPF_CORE_READ(user, sp);
		w.bp = BPF_CORE_READ(user, bp);
	}

	w.maps = bpf_map_lookup_elem(&processes, &pid);
	if (!w.maps) {
		/* Tables not loaded yet: keep the sampled address, say why no more. */
		s->user[0] = w.ip;
		s->user_len = 1;
		s->user_end = END_NO_PROCESS;
		return;
	}
	bpf_loop(MAX_USER_FRAMES, unwind_callback, &w, 0);
	if (!w.done)
		s->user_end = END_DEPTH;
}

static __always_inline __u64 read_ptr(__u64 addr)
{
	__u64 v = 0;

	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

struct py_walk {
	struct stack_sample *s;
	struct python_process *py;
	__u64 frame;
	__u32 n;
};

static long python_callback(__u32 i, void *ctx)
{
	struct py_walk *w = ctx;
	struct python_process *py = w->py;
	struct stack_sample *s = w->s;
	__u64 frame = w->frame, code = 0;

	if (!frame)
		return 1;
	if (bpf_probe_read_user(&code, sizeof(code), (void *)(frame + py->frame_code))) {
		s->py_state = PY_READ;
		return 1;
	}
	__u8 flag = 0;

	if (py->flag_kind != FLAG_EVERY)
		bpf_probe_read_user(&flag, sizeof(flag), (void *)(frame + py->frame_flag));
	w->frame = read_ptr(frame + py->frame_back);
	if (py->flag_kind == FLAG_OWNER && flag == FRAME_OWNED_BY_CSTACK) {
		/* The shim frame the eval loop pushes on entry: the frame recorded
		 * just before it was the outermost of that run. */
		if (w->n > 0)
			s->py[(w->n - 1) & (MAX_PY_FRAMES - 1)] |= PY_ENTRY;
		return 0;
	}
	if (!code || code == py->none_object)
		return 0;
	if (w->n >= MAX_PY_FRAMES) {
		s->py_state = PY_DEPTH;
		return 1;
	}
	bool entry = py->flag_kind == FLAG_EVERY || (py->flag_kind == FLAG_IS_ENTRY && flag);

	s->py[w->n & (MAX_PY_FRAMES - 1)] = code | (entry ? PY_ENTRY : 0);
	w->n++;
	return 0;
}

struct thread_walk {
	struct python_process *py;
	__u64 tstate;
	__u64 self;
	__u32 found;
};

static long thread_callback(__u32 i, void *ctx)
{
	struct thread_walk *t = ctx;

	if (!t->tstate)
		return 1;
	if (read_ptr(t->tstate + t->py->tstate_thread) == t->self) {
		t->found = 1;
		return 1;
	}
	t->tstate = read_ptr(t->tstate + t->py->tstate_next);
	return 0;
}

static __always_inline void python_frames(struct stack_sample *s, __u32 pid)
{
	struct python_process *py = bpf_map_lookup_elem(&python_processes, &pid);

	if (!py)
		return;
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 interp = read_ptr(py->interp_head);

	if (!interp) {
		s->py_state = PY_READ;
		return;
	}
	/* The thread state whose pthread_self() is this thread's fs base. */
	struct thread_walk t = {.py = py, .tstate = read_ptr(interp + py->threads_head),
				.self = BPF_CORE_READ(task, thread.fsbase)};

	bpf_loop(MAX_PY_THREADS, thread_callback, &t, 0);
	if (!t.found) {
		s->py_state = PY_NO_THREAD;
		return;
	}
	__u64 frame = read_ptr(t.tstate + py->tstate_frame);

	if (py->cframe_frame != NO_OFFSET && frame)
		frame = read_ptr(frame + py->cframe_frame);
	struct py_walk w = {.s = s, .py = py, .frame = frame};

	s->py_state = PY_OK;
	bpf_loop(MAX_PY_FRAMES + 32, python_callback, &w, 0);
	if (s->py_state == PY_OK && w.frame && w.n >= MAX_PY_FRAMES)
		s->py_state = PY_DEPTH;
	s->py_len = w.n;
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 zero = 0;

	/* The idle task of each CPU is not a workload. */
	if ((__u32)pid_tgid == 0)
		return 0;
	if (gadget_should_discard())
		return 0;
	struct stack_sample *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return 0;
	gadget_fill_process(&s->proc);
	s->user_len = s->kernel_len = s->py_len = 0;
	s->user_end = END_NOT_ASKED;
	s->py_state = PY_NONE;

	__u32 pid = pid_tgid >> 32;
	struct task_struct *task = bpf_get_current_task_btf();
	bool kernel_thread = BPF_CORE_READ(task, flags) & 0x00200000; /* PF_KTHREAD */

	if (!targ_user_only) {
		long n = bpf_get_stack(ctx, s->kernel, sizeof(s->kernel), 0);

		s->kernel_len = n > 0 ? n / sizeof(__u64) : 0;
	}
	if (!targ_kernel_only && !kernel_thread) {
		unwind_user(ctx, s, pid);
		if (!targ_no_python)
			python_frames(s, pid);
	}
	if (bpf_ringbuf_output(&gadget_events, s, sizeof(*s), BPF_RB_NO_WAKEUP))
		gadget_count_lost(&gadget_lost);
	return 0;
}

/* A process that runs a new program: its old tables no longer apply. */
static __always_inline void forget_current(void)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	bpf_map_delete_elem(&processes, &pid);
	bpf_map_delete_elem(&python_processes, &pid);
}

/* BTF-typed first: it needs no tracefs (a node pod may have none mounted). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec_btf)
{
	forget_current();
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	forget_current();
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
