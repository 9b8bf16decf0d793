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
 * Captures one stack (kernel, or user with BPF_F_USER_STACK) and stores it
 * in @stacks under a hash of its frames. Returns the hash, or 0 with *@err
 * set to a negative errno.
 */
static __always_inline __u64 capture_stack(void *ctx, void *stacks, __u64 flags, __s32 *err,
					   __u32 fail_stat)
{
	__u32 zero = 0;
	struct prof_stack *st = bpf_map_lookup_elem(&scratch, &zero);
	__u64 h = 0xcbf29ce484222325ULL;
	long n;
	long ret;

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
	if (st->nframes >= PROF_MAX_STACK_DEPTH) {
		st->flags |= PROF_STACK_FULL;
		stat_inc(PROF_STAT_STACK_TRUNCATED);
	}
	/* FNV-1a over whole frames; the verifier bounds the loop at 127 rounds. */
	for (__u32 i = 0; i < PROF_MAX_STACK_DEPTH; i++) {
		if (i >= st->nframes)
			break;
		h ^= st->frames[i];
		h *= 0x100000001b3ULL;
	}
	h ^= st->nframes;
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
	if (in_kernel && kernel_stacks)
		key.kern_stack =
			capture_stack(ctx, stacks, 0, &key.kern_err, PROF_STAT_KSTACK_FAIL);
	if (!kthread) {
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
	return 0;
}
