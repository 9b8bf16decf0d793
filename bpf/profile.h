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

/*
 * Frames kept per stack. Kernel stacks stop at the kernel's
 * perf_event_max_stack (127 by default); user stacks unwound with CFI go
 * to 256 frames, and a deeper one is cut off and marked (PROF_STACK_FULL).
 */
#define PROF_MAX_STACK_DEPTH 256
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

/*
 * In a user stack, a frame whose address is not a return address (the
 * signal trampoline, and the instruction a signal interrupted) carries this
 * bit: symbolize it at the address itself, not at address - 1. User
 * addresses never have it (x86-64 user space ends below 2^47).
 */
#define PROF_FRAME_EXACT (1ULL << 62)

#define PROF_STACK_FULL 0x1 /* nframes == PROF_MAX_STACK_DEPTH: the walk was cut off */
/* User stacks: why the unwinder stopped (enum prof_uw_stop) is in bits 8..15 of flags. */
#define PROF_STACK_STOP_SHIFT 8
#define PROF_STACK_STOP(flags) (((flags) >> PROF_STACK_STOP_SHIFT) & 0xff)

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
#define PROF_ERR_SNAPSHOT_LOST 1001 /* -1001: the snapshot ring buffer was full */

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
	PROF_STAT_UW_CFI_FRAMES, /* user frames unwound with CFI rows */
	PROF_STAT_UW_FP_FRAMES, /* user frames unwound with frame pointers (no row) */
	PROF_STAT_UW_SIGNAL_FRAMES, /* signal frames unwound through the ucontext */
	PROF_STAT__COUNT,
};

/* ---- DWARF CFI unwinding ---------------------------------------------------------------- */

/*
 * How a user stack walk ended. Counted per reason in the per-CPU
 * `unwind_stops` array, and kept in the stack's flags (PROF_STACK_STOP).
 */
enum prof_uw_stop {
	PROF_UW_RUNNING = 0, /* (never stored) */
	PROF_UW_COMPLETE, /* reached the outermost frame (CFI says so, or a 0 return address) */
	PROF_UW_TRUNCATED, /* PROF_MAX_STACK_DEPTH frames, and more to go */
	PROF_UW_SNAPSHOT, /* mappings or rows not loaded yet: sent to user space as a snapshot */
	PROF_UW_SNAPSHOT_LOST, /* ... but the snapshot ring buffer was full: the stack is partial */
	PROF_UW_NO_MAPPING, /* an address in no executable mapping (after a frame-pointer step) */
	PROF_UW_FP_END, /* no CFI and rbp == 0: end of a frame-pointer chain */
	PROF_UW_FP_BAD, /* no CFI and rbp does not point into the stack above sp */
	PROF_UW_READ_FAILED, /* a word of the user stack could not be read */
	PROF_UW_NO_PROGRESS, /* the caller's frame is not above this one: a broken rule or stack */
	PROF_UW_NOT_IN_TABLE, /* a row's address does not fit the 32-bit row format */
	PROF_UW__COUNT,
};

/*
 * One unwind row (8 bytes): from ELF virtual address pc up to the next
 * row, the caller's frame is found by `rule` (the values of
 * enum sym_cfa_rule in symbolizer/symbolizer.h). The return address is at
 * CFA - 8 except in SIGNAL and END rows.
 */
enum prof_uw_rule {
	PROF_UW_NONE = 0, /* no CFI here: frame pointers, then stop */
	PROF_UW_SP, /* CFA = rsp + 8 * cfa_off8 */
	PROF_UW_FP, /* CFA = rbp + 8 * cfa_off8 */
	PROF_UW_FP_DEREF, /* CFA = *(rbp + 8 * cfa_off8) */
	PROF_UW_PLT, /* CFA = rsp + 8, + 8 when (rip & 15) >= fp_off8 */
	PROF_UW_SIGNAL, /* rt_sigreturn trampoline: rip, rsp, rbp from the ucontext at rsp */
	PROF_UW_END, /* outermost frame */
	PROF_UW_UNSUPPORTED, /* a rule we do not follow: frame pointers, then stop */
};

struct prof_unwind_row {
	__u32 pc; /* ELF virtual address of the row's first byte */
	__u8 rule; /* enum prof_uw_rule */
	__s8 fp_off8; /* the caller's rbp is at CFA + 8 * fp_off8; 0 = rbp unchanged (PLT: cut) */
	__s16 cfa_off8; /* CFA offset in units of 8 bytes */
};
_Static_assert(sizeof(struct prof_unwind_row) == 8, "prof_unwind_row layout");

/* Where a loaded table's rows are in the `unwind_rows` array; count 0 = not loaded. */
struct prof_unwind_table {
	__u32 first;
	__u32 count;
};
_Static_assert(sizeof(struct prof_unwind_table) == 8, "prof_unwind_table layout");

/* Executable mappings per process in `proc_maps`; more are left out (and counted). */
#define PROF_MAX_EXEC_MAPS 128

enum prof_xmap_kind {
	PROF_XM_TABLE = 0, /* rows in unwind_tables[table] */
	PROF_XM_NO_CFI, /* a file without usable CFI: frame pointers */
	PROF_XM_ANON, /* anonymous executable memory (JIT): frame pointers */
};

struct prof_exec_map {
	__u64 start, end; /* [start, end) in the process */
	__u64 bias; /* ELF virtual address = address - bias */
	__u32 table; /* index in unwind_tables (PROF_XM_TABLE) */
	__u32 kind; /* enum prof_xmap_kind */
};
_Static_assert(sizeof(struct prof_exec_map) == 32, "prof_exec_map layout");

/* Value of `proc_maps` (key: tgid), written by user space for the address space `aspace`. */
struct prof_proc_maps {
	__u32 aspace; /* valid only while the pid's current aspace is this one */
	__u32 n; /* entries in m[], sorted by start */
	__u32 flags; /* PROF_PM_* */
	__u32 pad;
	struct prof_exec_map m[PROF_MAX_EXEC_MAPS];
};

/*
 * More executable mappings than fit (anonymous ones are left out first): an
 * address in none of them is not a reason to send a snapshot, since
 * re-reading the maps would not help.
 */
#define PROF_PM_INCOMPLETE 0x1

/* Bytes of user stack a snapshot carries: 3 pages, starting at sp's page (8 to 12 KiB). */
#define PROF_SNAP_PAGES 3
#define PROF_SNAP_STACK (PROF_SNAP_PAGES * 4096)
#define PROF_SNAP_KSTACK 127

#define PROF_SNAP_EXACT_PC 0x1 /* pc is not a return address (the sampled pc, or a signal's) */

/*
 * A sample whose user stack could not be unwound in the kernel because
 * the process's mappings or rows were not loaded yet (a new process, a
 * new library). User space finishes the walk with the same rows and counts
 * the sample (ring buffer `snapshots`).
 */
struct prof_snapshot {
	struct prof_sample_key key; /* kern_stack/user_stack are 0: the frames are below */
	__u64 pc, sp, bp; /* registers of the frame whose caller is still to be found */
	__u64 stack_base; /* user address of stack[0]: sp rounded down to a page */
	__u32 flags; /* PROF_SNAP_* */
	__u32 nuser; /* frames in user[], user[nuser - 1] == pc */
	__u32 nkern; /* frames in kern[] */
	__u32 stack_len; /* valid bytes of stack[], from stack[sp - stack_base] */
	__u64 kern[PROF_SNAP_KSTACK];
	__u64 user[PROF_MAX_STACK_DEPTH];
	__u8 stack[PROF_SNAP_STACK];
};

#endif
