// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bpf/profile.bpf.c — the sampling side of bpfprof.
 *
 *   prof_sample      perf_event (cpu-clock) on every CPU: captures kernel and
 *                    user stacks (frame pointers) and counts the sample in the
 *                    active set of maps.
 *   prof_exec        tp_btf/sched_process_exec: a new address space.
 *   prof_exit        tp_btf/sched_process_exit: the process is gone.
 *
 * tp_btf programs attach through BTF, so they need neither tracefs nor
 * kprobes (CONFIG_KPROBES is off on our machines).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "profile.h"

#define EEXIST 17
#define ENOMEM 12

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Settings, written by user space between open and load. */
const volatile __u32 filter_tgid = 0; /* 0 = every process */
const volatile bool kernel_stacks = true; /* capture kernel stacks */
/* Unwind user stacks with CFI rows (else frame pointers only, through bpf_get_stack). */
const volatile bool cfi_unwind = true;

/* Which map set the sampler writes to; flipped by user space (mmap'ed .bss). */
__u32 active_set = 0;
/* Source of address-space ids (see struct prof_pid_info). */
__u32 next_aspace = 1;

/*
 * max_entries of the maps below are set by user space before load (sized
 * from CPUs x frequency x drain interval). The maps are preallocated: a
 * BPF_F_NO_PREALLOC map allocates from per-CPU caches that are refilled
 * asynchronously, and an update from this interrupt-context program fails
 * with -ENOMEM when a burst of new stacks (process churn) empties them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, __u64);
	__type(value, struct prof_stack);
	__uint(max_entries, 4096);
} stacks0 SEC(".maps"), stacks1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__type(key, struct prof_sample_key);
	__type(value, __u64);
	__uint(max_entries, 16384);
} counts0 SEC(".maps"), counts1 SEC(".maps");

/* Scratch space for one stack: too big for the 512-byte BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct prof_stack);
	__uint(max_entries, 1);
} scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__type(key, __u32);
	__type(value, struct prof_pid_info);
	__uint(max_entries, 32768);
} pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PROF_STAT__COUNT);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, __u64);
	__uint(max_entries, PROF_UW__COUNT);
} unwind_stops SEC(".maps");

/*
 * The unwind rows of every loaded file, one after the other; user space
 * allocates ranges and writes them with batch updates (profiler/unwind.c).
 * Not mmap'ed: every page of a mapped BPF array counts in the agent's RSS.
 * Size set before load (--unwind-rows).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct prof_unwind_row);
	__uint(max_entries, 1 << 20);
} unwind_rows SEC(".maps");

/* Table id -> its range of unwind_rows; count 0 while not loaded. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__type(key, __u32);
	__type(value, struct prof_unwind_table);
	__uint(max_entries, 16384);
} unwind_tables SEC(".maps");

/*
 * tgid -> its executable mappings. Written only by user space (from
 * syscall context), so it need not be preallocated: 4 KiB per process
 * that is tracked, not per possible process. Deleted at exec and exit.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct prof_proc_maps);
	__uint(max_entries, 16384);
} proc_maps SEC(".maps");

/* Stacks of new processes, unwound in user space (struct prof_snapshot). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 2 << 20); /* ~130 snapshots; user space copies them out at once */
} snapshots SEC(".maps");

/* The walker's state: too big for the BPF stack. */
struct walk {
	__u64 pc, sp, bp;
	__u32 tgid, aspace;
	__u32 stop; /* enum prof_uw_stop, PROF_UW_RUNNING while walking */
	__u32 exact; /* pc is not a return address: look it up as is, not pc - 1 */
	__u32 fp_step; /* the current pc came from a frame-pointer step */
	__u32 tmp; /* laundering of indexes, see unwind_one() */
	/*
	 * The last lookup: recursion returns to the same address frame after
	 * frame, and its row is reused (a 230-deep recursion costs one search).
	 */
	__u64 last_look;
	struct prof_unwind_row last_row;
	struct prof_stack st;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__type(key, __u32);
	__type(value, struct walk);
	__uint(max_entries, 1);
} walkbuf SEC(".maps");

static __always_inline void stat_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &which);

	if (v)
		*v += 1; /* per-CPU: no atomics needed */
}

static __always_inline void emit_event(__u32 type, __u32 pid, __u32 aspace)
{
	struct prof_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		stat_inc(PROF_STAT_EVENTS_LOST);
		return;
	}
	e->type = type;
	e->pid = pid;
	e->aspace = aspace;
	e->pad = 0;
	e->ktime_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(e, 0);
}

/* A fresh address-space id for @tgid, announced to user space as @type. */
static __always_inline __u32 new_aspace(__u32 tgid, __u32 type)
{
	struct prof_pid_info info = {};

	info.aspace = __sync_fetch_and_add(&next_aspace, 1);
	info.rescans = type == PROF_EV_EXEC ? PROF_RESCANS_AFTER_EXEC : 0;
	if (bpf_map_update_elem(&pids, &tgid, &info, BPF_ANY))
		stat_inc(PROF_STAT_PIDS_FULL);
	emit_event(type, tgid, info.aspace);
	return info.aspace;
}

static __always_inline bool regs_in_kernel(struct bpf_perf_event_data *ctx)
{
#if defined(__TARGET_ARCH_x86)
	/*
	 * The verifier only allows full-width reads of the perf context's
	 * registers, and newer kernels declare cs as a u16 inside a union.
	 */
	__u64 cs = *(volatile __u64 *)&ctx->regs.cs;

	return (cs & 3) == 0;
#elif defined(__TARGET_ARCH_arm64)
	return (ctx->regs.pstate & 0xf) != 0; /* EL0 is user mode */
#else
	return false;
#endif
}

/*
 * Stores @st in @stacks under a hash of its frames and flags. Returns the
 * hash, or 0 with *@err set when the map is full.
 */
static __always_inline __u64 store_stack(void *stacks, struct prof_stack *st, __s32 *err)
{
	__u64 h = 0xcbf29ce484222325ULL;
	long ret;

	/* FNV-1a over whole frames; the verifier bounds the loop. */
	for (__u32 i = 0; i < PROF_MAX_STACK_DEPTH; i++) {
		if (i >= st->nframes)
			break;
		h ^= st->frames[i];
		h *= 0x100000001b3ULL;
	}
	h ^= st->nframes;
	h *= 0x100000001b3ULL;
	h ^= st->flags;
	if (h == 0)
		h = 1; /* 0 means "no stack" in prof_sample_key */
	ret = bpf_map_update_elem(stacks, &h, st, BPF_NOEXIST);
	if (ret && ret != -EEXIST) {
		stat_inc(PROF_STAT_STACK_FULL);
		*err = -PROF_ERR_STACKS_FULL;
		return 0;
	}
	return h;
}

/*
 * Captures one stack (kernel, or user with BPF_F_USER_STACK) and stores it
 * in @stacks under a hash of its frames. Returns the hash, or 0 with *@err
 * set to a negative errno.
 */
static __always_inline __u64 capture_stack(void *ctx, void *stacks, __u64 flags, __s32 *err,
					   __u32 fail_stat)
{
	__u32 zero = 0;
	struct prof_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	long n;

	if (!st) {
		*err = -1;
		return 0;
	}
	n = bpf_get_stack(ctx, st->frames, sizeof(st->frames), flags);
	if (n <= 0) {
		*err = n < 0 ? (__s32)n : -2; /* ENOENT-like: empty stack */
		stat_inc(fail_stat);
		return 0;
	}
	st->nframes = n / sizeof(__u64);
	st->flags = 0;
	/* bpf_get_stack() stops at perf_event_max_stack (127 by default). */
	if (st->nframes >= 127) {
		st->flags |= PROF_STACK_FULL;
		stat_inc(PROF_STAT_STACK_TRUNCATED);
	}
	return store_stack(stacks, st, err);
}

#if defined(__TARGET_ARCH_x86)
/*
 * Whether @ra follows a call instruction: call rel32 (E8 + 4 bytes), or an
 * indirect call FF /2 with a ModRM of 2 (register), 3 (disp8) or 6 bytes
 * (disp32, RIP-relative). Reads 8 bytes of user code.
 */
static __always_inline bool after_call(__u64 ra)
{
	__u8 c[8];

	if (ra < 4096 || bpf_probe_read_user(c, sizeof(c), (void *)(ra - 8)))
		return false;
	if (c[3] == 0xe8)
		return true;
	/* FF /2 with a SIB byte: call *(b,i,s) (3), *d8(b,i,s) (4), *d32(b,i,s) (7) */
	if (c[5] == 0xff && c[6] == 0x14)
		return true;
	if (c[4] == 0xff && (c[5] & 0xc7) == 0x44 && (c[5] & 0x38) == 0x10)
		return true;
	if (c[1] == 0xff && (c[2] & 0xc7) == 0x84 && (c[2] & 0x38) == 0x10)
		return true;
	/* FF /2 with mod 11 (call *%reg), or mod 00 without SIB/disp (call *(%reg)) */
	if (c[6] == 0xff && (c[7] & 0x38) == 0x10 &&
	    ((c[7] & 0xc0) == 0xc0 || ((c[7] & 0xc0) == 0 && (c[7] & 7) != 4 && (c[7] & 7) != 5)))
		return true;
	if (c[5] == 0xff && (c[6] & 0x38) == 0x10 && (c[6] & 0xc0) == 0x40)
		return true;
	if (c[2] == 0xff && (c[3] & 0x38) == 0x10 && ((c[3] & 0xc0) == 0x80 || c[3] == 0x15))
		return true;
	return false;
}

/* See prof_sample_key.leaf_ra. */
static __always_inline void find_leaf_ra(struct bpf_perf_event_data *ctx, struct task_struct *task,
					 bool in_kernel, struct prof_sample_key *key)
{
	__u64 sp, w[2];

	if (!in_kernel) {
		sp = *(volatile __u64 *)&ctx->regs.sp;
	} else {
		/* The user registers saved at kernel entry (needs a BTF task pointer). */
		struct pt_regs *regs =
			(struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		if (!regs)
			return;
		sp = BPF_CORE_READ(regs, sp);
	}
	if (bpf_probe_read_user(w, sizeof(w), (void *)sp))
		return;
	if (after_call(w[0]))
		key->leaf_ra[0] = w[0];
	if (after_call(w[1]))
		key->leaf_ra[1] = w[1];
}
#else
static __always_inline void find_leaf_ra(struct bpf_perf_event_data *ctx, struct task_struct *task,
					 bool in_kernel, struct prof_sample_key *key)
{
}
#endif

static __always_inline void count_sample(void *counts, struct prof_sample_key *key)
{
	__u64 one = 1, *val;
	long err;

	val = bpf_map_lookup_elem(counts, key);
	if (val) {
		__sync_fetch_and_add(val, 1);
		return;
	}
	err = bpf_map_update_elem(counts, key, &one, BPF_NOEXIST);
	if (err == -EEXIST) {
		/* Another CPU inserted the same key in between. */
		val = bpf_map_lookup_elem(counts, key);
		if (val)
			__sync_fetch_and_add(val, 1);
	} else if (err) {
		stat_inc(PROF_STAT_COUNTS_FULL);
	}
}

#if defined(__TARGET_ARCH_x86)
#define CFI_WALKER 1
#else
#define CFI_WALKER 0
#endif

/* ---- the CFI walker ------------------------------------------------------------------- */

#if defined(__TARGET_ARCH_x86)
static __always_inline void stop_inc(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&unwind_stops, &which);

	if (v)
		*v += 1;
}

static __always_inline int walk_stop(struct walk *w, __u32 why)
{
	w->stop = why;
	return 1;
}

static __always_inline int read_word(__u64 addr, __u64 *out)
{
	return bpf_probe_read_user(out, sizeof(*out), (void *)addr);
}

/* No row covers pc: the frame-pointer chain, the only other rule there is. */
static __always_inline int fp_step(struct walk *w)
{
	__u64 nbp, ra;

	if (w->bp == 0)
		return walk_stop(w, PROF_UW_FP_END);
	if (w->bp < w->sp || (w->bp & 7))
		return walk_stop(w, PROF_UW_FP_BAD);
	if (read_word(w->bp, &nbp) || read_word(w->bp + 8, &ra))
		return walk_stop(w, PROF_UW_READ_FAILED);
	stat_inc(PROF_STAT_UW_FP_FRAMES);
	w->sp = w->bp + 16;
	w->bp = nbp;
	w->pc = ra;
	w->exact = 0;
	w->fp_step = 1;
	return ra == 0 ? walk_stop(w, PROF_UW_COMPLETE) : 0;
}

/*
 * Finds the caller of the frame (w->pc, w->sp, w->bp) and makes it the
 * current frame. Returns 1 when the walk is over (w->stop says why).
 */
static __always_inline int unwind_one(struct walk *w)
{
	struct prof_proc_maps *pm = bpf_map_lookup_elem(&proc_maps, &w->tgid);
	__u64 look = w->exact ? w->pc : w->pc - 1;
	struct prof_unwind_table *t;
	struct prof_unwind_row *row;
	struct prof_exec_map *xm;
	__u32 lo, hi, n, idx;
	__u64 vaddr, cfa, ra;

	if (w->pc < 4096)
		return walk_stop(w, PROF_UW_NO_MAPPING); /* no user state (io_uring workers) */
	if (look == w->last_look) {
		row = &w->last_row;
		goto apply;
	}
	if (!pm || pm->aspace != w->aspace)
		return walk_stop(w, PROF_UW_SNAPSHOT);

	/* The mapping: the last one starting at or below look. */
	n = pm->n;
	if (n > PROF_MAX_EXEC_MAPS)
		n = PROF_MAX_EXEC_MAPS;
	lo = 0;
	hi = n;
	for (int k = 0; k < 8; k++) { /* 2^8 > PROF_MAX_EXEC_MAPS */
		__u32 mid;

		if (lo >= hi)
			break;
		mid = (lo + hi) / 2;
		/*
		 * Through memory the verifier does not track: an index used in
		 * pointer arithmetic makes lo and hi "precise", and then every
		 * path through the loop is verified on its own (2^8 of them,
		 * each followed by the row search): seconds of load time.
		 */
		*(volatile __u32 *)&w->tmp = mid;
		mid = *(volatile __u32 *)&w->tmp;
		if (pm->m[mid & (PROF_MAX_EXEC_MAPS - 1)].start <= look)
			lo = mid + 1;
		else
			hi = mid;
	}
	*(volatile __u32 *)&w->tmp = lo;
	lo = *(volatile __u32 *)&w->tmp;
	xm = lo ? &pm->m[(lo - 1) & (PROF_MAX_EXEC_MAPS - 1)] : NULL;
	if (!xm || look >= xm->end) {
		/*
		 * After a frame-pointer step the address is likely garbage; after
		 * a CFI step it is real, and the mappings are out of date (dlopen):
		 * user space re-reads them when it gets the snapshot.
		 */
		return walk_stop(w, w->fp_step || (pm->flags & PROF_PM_INCOMPLETE)
					    ? PROF_UW_NO_MAPPING
					    : PROF_UW_SNAPSHOT);
	}
	if (xm->kind != PROF_XM_TABLE)
		return fp_step(w);
	idx = xm->table;
	t = bpf_map_lookup_elem(&unwind_tables, &idx);
	if (!t || t->count == 0)
		return walk_stop(w, PROF_UW_SNAPSHOT); /* rows still being loaded */
	vaddr = look - xm->bias;
	if (vaddr > 0xffffffffULL)
		return walk_stop(w, PROF_UW_NOT_IN_TABLE);

	/* The row: the last one whose pc <= vaddr. */
	lo = t->first;
	hi = t->first + t->count;
	if (hi < lo)
		return walk_stop(w, PROF_UW_NOT_IN_TABLE);
	for (int k = 0; k < 24; k++) { /* 2^24 rows at most */
		struct prof_unwind_row *r;
		__u32 mid;

		if (lo >= hi)
			break;
		mid = lo + (hi - lo) / 2;
		r = bpf_map_lookup_elem(&unwind_rows, &mid);
		if (!r)
			return walk_stop(w, PROF_UW_NOT_IN_TABLE);
		if (r->pc <= (__u32)vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == t->first)
		return fp_step(w); /* before the first row */
	idx = lo - 1;
	row = bpf_map_lookup_elem(&unwind_rows, &idx);
	if (!row)
		return walk_stop(w, PROF_UW_NOT_IN_TABLE);
	w->last_look = look;
	w->last_row = *row;

apply:
	switch (row->rule) {
	case PROF_UW_SP:
		cfa = w->sp + (__s64)row->cfa_off8 * 8;
		break;
	case PROF_UW_FP:
		cfa = w->bp + (__s64)row->cfa_off8 * 8;
		break;
	case PROF_UW_FP_DEREF:
		if (read_word(w->bp + (__s64)row->cfa_off8 * 8, &cfa))
			return walk_stop(w, PROF_UW_READ_FAILED);
		break;
	case PROF_UW_PLT:
		cfa = w->sp + 8 + ((w->pc & 15) >= (__u64)row->fp_off8 ? 8 : 0);
		break;
	case PROF_UW_SIGNAL: {
		/*
		 * The handler returned into __restore_rt with rsp at the
		 * ucontext (arch/x86/include/asm/sigframe.h, rt_sigframe): the
		 * interrupted registers are in uc_mcontext, at offset 40, in
		 * struct sigcontext_64 order (rbp is word 10, rsp 15, rip 16).
		 */
		__u64 regs[7]; /* bp .. ip: words 10 to 16 */

		if (bpf_probe_read_user(regs, sizeof(regs), (void *)(w->sp + 40 + 80)))
			return walk_stop(w, PROF_UW_READ_FAILED);
		stat_inc(PROF_STAT_UW_SIGNAL_FRAMES);
		/* The trampoline's address was pushed by the kernel, not by a call. */
		idx = w->st.nframes - 1;
		if (idx < PROF_MAX_STACK_DEPTH)
			w->st.frames[idx & (PROF_MAX_STACK_DEPTH - 1)] |= PROF_FRAME_EXACT;
		w->bp = regs[0];
		w->sp = regs[5];
		w->pc = regs[6];
		w->exact = 1; /* an interrupted instruction, not a return address */
		w->fp_step = 0;
		return w->pc == 0 ? walk_stop(w, PROF_UW_COMPLETE) : 0;
	}
	case PROF_UW_END:
		return walk_stop(w, PROF_UW_COMPLETE);
	default: /* PROF_UW_NONE, PROF_UW_UNSUPPORTED */
		return fp_step(w);
	}
	if (cfa <= w->sp)
		return walk_stop(w, PROF_UW_NO_PROGRESS);
	if (read_word(cfa - 8, &ra))
		return walk_stop(w, PROF_UW_READ_FAILED);
	if (row->fp_off8 && row->rule != PROF_UW_PLT &&
	    read_word(cfa + (__s64)row->fp_off8 * 8, &w->bp))
		return walk_stop(w, PROF_UW_READ_FAILED);
	stat_inc(PROF_STAT_UW_CFI_FRAMES);
	w->sp = cfa;
	w->pc = ra;
	w->exact = 0;
	w->fp_step = 0;
	return ra == 0 ? walk_stop(w, PROF_UW_COMPLETE) : 0;
}

/* One frame per bpf_loop() round: store the current pc, then find its caller. */
static long walk_step(__u32 i, void *ctx)
{
	__u32 zero = 0;
	struct walk *w = bpf_map_lookup_elem(&walkbuf, &zero);
	__u32 n;

	if (!w)
		return 1;
	n = w->st.nframes;
	if (n >= PROF_MAX_STACK_DEPTH)
		return walk_stop(w, PROF_UW_TRUNCATED);
	w->st.frames[n & (PROF_MAX_STACK_DEPTH - 1)] =
		w->pc | (n && w->exact ? PROF_FRAME_EXACT : 0);
	w->st.nframes = n + 1;
	return unwind_one(w);
}

/*
 * Sends the walk as a snapshot for user space to finish: the frames so
 * far, the registers of the frame to go on from, the kernel stack, and the
 * user stack from sp's page on, up to PROF_SNAP_PAGES pages (a page that
 * cannot be read ends the copy). Returns false when the ring buffer is full.
 */
static __always_inline bool send_snapshot(void *ctx, struct walk *w,
					  const struct prof_sample_key *key, bool in_kernel)
{
	struct prof_snapshot *r = bpf_ringbuf_reserve(&snapshots, sizeof(*r), 0);
	__u64 base, off0;
	long n;

	if (!r)
		return false;
	__builtin_memcpy(&r->key, key, sizeof(*key));
	r->pc = w->pc;
	r->sp = w->sp;
	r->bp = w->bp;
	r->flags = w->exact ? PROF_SNAP_EXACT_PC : 0;
	r->nuser = w->st.nframes;
	if (bpf_probe_read_kernel(r->user, sizeof(r->user), w->st.frames))
		r->nuser = 0;
	r->nkern = 0;
	if (in_kernel && kernel_stacks) {
		n = bpf_get_stack(ctx, r->kern, sizeof(r->kern), 0);
		if (n > 0)
			r->nkern = n / sizeof(__u64);
		else
			r->key.kern_err = n < 0 ? (__s32)n : -2;
	}
	base = w->sp & ~4095ULL;
	off0 = w->sp & 4095;
	r->stack_base = base;
	r->stack_len = 0;
	if (!bpf_probe_read_user(&r->stack[off0], 4096 - off0, (void *)w->sp)) {
		r->stack_len = 4096;
		for (int p = 1; p < PROF_SNAP_PAGES; p++) {
			if (bpf_probe_read_user(&r->stack[p * 4096], 4096,
						(void *)(base + p * 4096)))
				break;
			r->stack_len += 4096;
		}
	}
	bpf_ringbuf_submit(r, 0);
	return true;
}

/*
 * Walks the user stack with CFI rows into the walker's stack. Returns
 * true when the sample went to user space as a snapshot (it is counted
 * there, not here).
 */
static __always_inline bool cfi_user_stack(struct bpf_perf_event_data *ctx, bool in_kernel,
					   struct prof_sample_key *key, struct walk **wp)
{
	__u32 zero = 0;
	struct walk *w = bpf_map_lookup_elem(&walkbuf, &zero);

	*wp = w;
	if (!w)
		return false;
	if (!in_kernel) {
		w->pc = *(volatile __u64 *)&ctx->regs.ip;
		w->sp = *(volatile __u64 *)&ctx->regs.sp;
		w->bp = *(volatile __u64 *)&ctx->regs.bp;
	} else {
		/* The user registers saved at kernel entry. */
		struct pt_regs *regs =
			(struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

		if (!regs) {
			w->st.nframes = 0;
			w->stop = PROF_UW_READ_FAILED;
			stop_inc(PROF_UW_READ_FAILED);
			return false;
		}
		w->pc = BPF_CORE_READ(regs, ip);
		w->sp = BPF_CORE_READ(regs, sp);
		w->bp = BPF_CORE_READ(regs, bp);
	}
	w->tgid = key->pid;
	w->aspace = key->aspace;
	w->last_look = 0;
	w->stop = PROF_UW_RUNNING;
	w->exact = 1;
	w->fp_step = 0;
	w->st.nframes = 0;
	w->st.flags = 0;
	bpf_loop(PROF_MAX_STACK_DEPTH, walk_step, NULL, 0);
	if (w->stop == PROF_UW_RUNNING)
		w->stop = PROF_UW_TRUNCATED; /* every round found another caller */
	if (w->stop == PROF_UW_SNAPSHOT) {
		if (send_snapshot(ctx, w, key, in_kernel)) {
			stop_inc(PROF_UW_SNAPSHOT);
			return true;
		}
		w->stop = PROF_UW_SNAPSHOT_LOST;
	}
	stop_inc(w->stop);
	if (w->stop == PROF_UW_TRUNCATED) {
		w->st.flags |= PROF_STACK_FULL;
		stat_inc(PROF_STAT_STACK_TRUNCATED);
	}
	w->st.flags |= w->stop << PROF_STACK_STOP_SHIFT;
	return false;
}
#endif

SEC("perf_event")
int prof_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct prof_sample_key key = {};
	struct prof_pid_info *info;
	bool in_kernel = regs_in_kernel(ctx);
	bool kthread;
	void *stacks, *counts;
	__u32 set;

	if (tgid == 0) {
		stat_inc(PROF_STAT_IDLE);
		return 0;
	}
	if (filter_tgid && tgid != filter_tgid) {
		stat_inc(PROF_STAT_FILTERED);
		return 0;
	}
	stat_inc(PROF_STAT_SAMPLES);

	key.pid = tgid;
	key.tid = tid;
	key.flags = in_kernel ? PROF_KEY_KERNEL_MODE : 0;
	bpf_get_current_comm(key.thread, sizeof(key.thread));
	BPF_CORE_READ_STR_INTO(&key.comm, task, group_leader, comm);
	kthread = BPF_CORE_READ(task, mm) == NULL;

	info = bpf_map_lookup_elem(&pids, &tgid);
	if (info) {
		key.aspace = info->aspace;
		if (info->rescans) {
			info->rescans--; /* racy across CPUs: at worst one rescan more */
			emit_event(PROF_EV_RESCAN, tgid, key.aspace);
		}
	} else if (!kthread) {
		key.aspace = new_aspace(tgid, PROF_EV_NEW_PID);
	}

	/* One read: the stacks and the count of a sample must land in the same set. */
	set = *(volatile __u32 *)&active_set;
	stacks = set ? (void *)&stacks1 : (void *)&stacks0;
	counts = set ? (void *)&counts1 : (void *)&counts0;

	/*
	 * A sample taken in user mode has no kernel stack; one taken in kernel
	 * mode gets the user registers from the task's pt_regs (the kernel's
	 * get_perf_callchain() does that for BPF_F_USER_STACK).
	 */
#if defined(__TARGET_ARCH_x86)
	if (!kthread && cfi_unwind) {
		struct walk *w;

		if (cfi_user_stack(ctx, in_kernel, &key, &w))
			return 0; /* a snapshot: user space counts it */
		if (w && w->st.nframes) {
			key.user_stack = store_stack(stacks, &w->st, &key.user_err);
		} else {
			key.user_err = -14; /* -EFAULT: no user registers */
			stat_inc(PROF_STAT_USTACK_FAIL);
		}
	}
#endif
	if (in_kernel && kernel_stacks)
		key.kern_stack =
			capture_stack(ctx, stacks, 0, &key.kern_err, PROF_STAT_KSTACK_FAIL);
	/* Frame pointers: asked for, or no CFI walker for this architecture (x86-64 only). */
	if (!kthread && (!cfi_unwind || !CFI_WALKER)) {
		key.user_stack = capture_stack(ctx, stacks, BPF_F_USER_STACK, &key.user_err,
					       PROF_STAT_USTACK_FAIL);
		find_leaf_ra(ctx, task, in_kernel, &key);
	}

	count_sample(counts, &key);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(prof_exec, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);

	if (filter_tgid && tgid != filter_tgid)
		return 0;
	new_aspace(tgid, PROF_EV_EXEC);
	/* The old image's mappings are gone; user space sends the new ones. */
	bpf_map_delete_elem(&proc_maps, &tgid);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(prof_exit, struct task_struct *p)
{
	__u32 tgid = BPF_CORE_READ(p, tgid);
	struct prof_pid_info *info;

	/* Only the thread group leader's exit ends the process (as ps sees it). */
	if (BPF_CORE_READ(p, pid) != tgid)
		return 0;
	info = bpf_map_lookup_elem(&pids, &tgid);
	if (!info)
		return 0;
	emit_event(PROF_EV_EXIT, tgid, info->aspace);
	bpf_map_delete_elem(&pids, &tgid);
	bpf_map_delete_elem(&proc_maps, &tgid);
	return 0;
}
