/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bpf/profile.h — the one ABI shared by bpf/profile.bpf.c and user space
 * (profiler/sampler.c). Fixed-width fields only; every struct size is
 * asserted so that both compilers agree on the layout.
 *
 * Counting scheme: samples are counted in the kernel, in one of two sets of
 * maps (stacks0/counts0 and stacks1/counts1). The program writes to the set
 * named by the .bss variable `active_set`; user space flips it, waits for
 * programs already running to finish, then drains and clears the inactive
 * set. Nothing is lost between a read and a delete, and stack ids stay valid
 * until their counts are read.
 */
#ifndef BPFPROF_BPF_PROFILE_H
#define BPFPROF_BPF_PROFILE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Frames kept per stack (the kernel's default perf_event_max_stack is 127). */
#define PROF_MAX_STACK_DEPTH 127
#define PROF_COMM_LEN 16
/* Samples after an exec that make user space re-read the maps (see prof_pid_info). */
#define PROF_RESCANS_AFTER_EXEC 3

/*
 * A captured stack, stored in the stacks maps under a 64-bit hash of its
 * frames. A hash map chains colliding entries, unlike
 * BPF_MAP_TYPE_STACK_TRACE, which has one slot per bucket and drops a second
 * stack that lands in a taken bucket (-EEXIST): with a few hundred distinct
 * stacks per drain that would lose a few percent of all stacks.
 */
struct prof_stack {
	__u32 nframes; /* valid entries in frames[] */
	__u32 flags; /* PROF_STACK_* */
	__u64 frames[PROF_MAX_STACK_DEPTH]; /* [0] is the sampled IP, then return addresses */
};
_Static_assert(sizeof(struct prof_stack) == 8 + 8 * PROF_MAX_STACK_DEPTH, "prof_stack layout");

#define PROF_STACK_FULL 0x1 /* nframes == PROF_MAX_STACK_DEPTH: the walk may have been cut off */

/* Key of the counts maps: one entry per distinct (thread, stacks) pair. */
struct prof_sample_key {
	__u32 pid; /* tgid in the initial pid namespace */
	__u32 tid; /* thread id in the initial pid namespace */
	__u64 kern_stack; /* key in the stacks map, 0 = no kernel stack */
	__u64 user_stack; /* key in the stacks map, 0 = no user stack */
	__s32 kern_err; /* why kern_stack is 0: 0 = not wanted (user-mode sample), else -errno */
	__s32 user_err; /* why user_stack is 0: 0 = kernel thread, else -errno */
	__u32 aspace; /* address-space id of the pid when sampled (see prof_pid_info) */
	__u32 flags; /* PROF_KEY_* */
	/*
	 * The words at [sp] and [sp + 8] of the user stack, each kept only if
	 * it follows a call instruction (else 0). A function that has not set
	 * up its frame (a leaf that uses no stack, even when built with frame
	 * pointers; a libc syscall wrapper; a function's first instructions)
	 * keeps its return address there, and a frame-pointer walk skips its
	 * caller. User space reads the leaf's CFI: when the CFA is rsp + 8 it
	 * inserts leaf_ra[0] as the caller, when it is rsp + 16 leaf_ra[1].
	 */
	__u64 leaf_ra[2];
	char comm[PROF_COMM_LEN]; /* process name: the thread group leader's comm */
	char thread[PROF_COMM_LEN]; /* thread name: current->comm */
};
_Static_assert(sizeof(struct prof_sample_key) == 88, "prof_sample_key layout");

/* Pseudo errno values for kern_err/user_err that do not come from a helper. */
#define PROF_ERR_STACKS_FULL 1000 /* -1000: the stacks map was full */

#define PROF_KEY_KERNEL_MODE 0x1 /* the sample interrupted kernel code */

/*
 * Per-tgid state in the pids map. aspace is an address-space id, unique for
 * the life of the loaded program: a new one is drawn from a global counter
 * when a pid is first seen and at every exec. User space keeps the mappings
 * of each (pid, aspace) apart, so a sample taken before an exec is symbolized
 * with the old image's mappings, and a reused pid never inherits the
 * mappings of the process that had it before.
 */
struct prof_pid_info {
	__u32 aspace;
	/*
	 * PROF_EV_RESCAN events still to send: the exec tracepoint fires before
	 * ld.so has mapped the program's libraries, so user space reads the
	 * maps again on the first samples after an exec.
	 */
	__u32 rescans;
};
_Static_assert(sizeof(struct prof_pid_info) == 8, "prof_pid_info layout");

/* Events from the kernel to the process tracker, through the ring buffer. */
enum prof_event_type {
	PROF_EV_NEW_PID = 1, /* first sample of a pid we had not seen: read its maps now */
	PROF_EV_EXEC = 2, /* the pid exec'd: new address space, new aspace id */
	PROF_EV_EXIT = 3, /* the thread group leader exited */
	PROF_EV_RESCAN = 4, /* a sample soon after exec: read the maps again */
};

struct prof_event {
	__u32 type; /* enum prof_event_type */
	__u32 pid;
	__u32 aspace; /* address-space id after the event */
	__u32 pad;
	__u64 ktime_ns; /* bpf_ktime_get_ns() */
};
_Static_assert(sizeof(struct prof_event) == 24, "prof_event layout");

/*
 * Counters in the per-CPU `stats` array, indexed by this enum. User space sums
 * the CPUs. Failures are counted here, never printed from BPF.
 */
enum prof_stat {
	PROF_STAT_SAMPLES = 0, /* perf_event program runs that were counted */
	PROF_STAT_IDLE, /* samples of the idle task (pid 0), not counted */
	PROF_STAT_FILTERED, /* samples of other pids when filtering by pid */
	PROF_STAT_KSTACK_FAIL, /* kernel stack could not be captured */
	PROF_STAT_USTACK_FAIL, /* user stack could not be captured (not a kernel thread) */
	PROF_STAT_STACK_FULL, /* stacks map full: the sample is kept, its stack is lost */
	PROF_STAT_STACK_TRUNCATED, /* a stack filled all PROF_MAX_STACK_DEPTH frames */
	PROF_STAT_COUNTS_FULL, /* counts map full: sample dropped */
	PROF_STAT_EVENTS_LOST, /* ring buffer full: a process event was dropped */
	PROF_STAT_PIDS_FULL, /* pids map update failed */
	PROF_STAT__COUNT,
};

#endif
