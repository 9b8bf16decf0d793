/* SPDX-License-Identifier: MIT */
/*
 * profiler/sampler.h — loads bpf/profile.bpf.c, attaches it to a cpu-clock
 * perf event on every online CPU and to the exec/exit tracepoints, and
 * drains the kernel's counts.
 *
 * CPUs that come online after prof_sampler__open() are not sampled (see
 * docs/DESIGN-NOTES.md); the agent must be restarted to include them.
 *
 * Threading: one thread owns a sampler (the collector thread).
 */
#ifndef BPFPROF_SAMPLER_H
#define BPFPROF_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../bpf/profile.h"
#include "unwind.h"

struct prof_sampler_opts {
	unsigned int freq; /* samples per second per CPU (cpu-clock) */
	int pid; /* sample only this process; 0 = every process */
	bool kernel_stacks; /* capture kernel stacks too */
	uint32_t max_stacks; /* entries per stacks map, 0 = default (see map_size()) */
	uint32_t max_counts; /* entries per counts map, 0 = default (see map_size()) */
	unsigned int drain_ms; /* how often the maps are drained, for the default sizes */
	bool cfi_unwind; /* walk user stacks with CFI rows (else frame pointers only) */
	uint32_t unwind_rows; /* entries of the unwind row array, 0 = PROF_DEFAULT_UNWIND_ROWS */
};

/* 1 Mi rows of 8 bytes: 8 MiB of kernel memory, ~30 libcs' worth of tables. */
#define PROF_DEFAULT_UNWIND_ROWS (1U << 20)

struct prof_sampler;

/*
 * Checks privileges, loads and attaches. Returns NULL with errno set; the
 * reason has been logged in one line (e.g. "needs CAP_BPF and CAP_PERFMON").
 */
struct prof_sampler *prof_sampler__open(const struct prof_sampler_opts *opts);
/* Detaches everything and frees. NULL is a no-op. */
void prof_sampler__free(struct prof_sampler *s);

/* Number of CPUs sampled. */
int prof_sampler__ncpus(const struct prof_sampler *s);

/* A file descriptor that becomes readable when process events are queued (epoll). */
int prof_sampler__events_fd(const struct prof_sampler *s);

typedef void (*prof_event_fn)(void *ctx, const struct prof_event *e);
typedef void (*prof_snapshot_fn)(void *ctx, const struct prof_snapshot *snap);
/*
 * Hands every queued process event to @fn and every stack snapshot (CFI
 * mode) to @snap_fn. Returns the number handled or -errno.
 */
int prof_sampler__consume_events(struct prof_sampler *s, prof_event_fn fn, prof_snapshot_fn snap_fn,
				 void *ctx);

/* The CFI maps for profiler/unwind.c; false in frame-pointer mode. */
bool prof_sampler__unwind_maps(const struct prof_sampler *s, struct prof_unwind_maps *out);
/* Sums the per-CPU counts of how user stack walks ended (enum prof_uw_stop). */
int prof_sampler__unwind_stops(struct prof_sampler *s, uint64_t out[PROF_UW__COUNT]);

/*
 * One counted entry of a drain. The stacks are leaf first; NULL/0 when the
 * key has no such stack. Pointers are valid only during the callback.
 */
struct prof_raw_sample {
	const struct prof_sample_key *key;
	uint64_t count;
	const __u64 *kstack;
	uint32_t nkstack;
	const __u64 *ustack;
	uint32_t nustack;
	bool ustack_full; /* the user stack filled PROF_MAX_STACK_DEPTH frames */
	bool kstack_lost; /* kernel stack was wanted but is missing (map full, stale) */
	bool ustack_lost;
};
typedef void (*prof_sample_fn)(void *ctx, const struct prof_raw_sample *s);

/*
 * Flips the active map set, waits for programs still writing to the old one,
 * hands every counted entry of the old set to @fn and clears it. *@flip_ns
 * (CLOCK_MONOTONIC) gets the time of the flip: every sample handed out was
 * taken before it, every later one goes to the next drain.
 * Returns the number of entries or -errno.
 */
int prof_sampler__drain(struct prof_sampler *s, prof_sample_fn fn, void *ctx, uint64_t *flip_ns);

/* Entries per stacks and counts map (each of the two sets). */
void prof_sampler__capacity(const struct prof_sampler *s, uint32_t *stacks, uint32_t *counts);
/* Stacks held by the set the last drain read (its count is drain()'s return value). */
uint32_t prof_sampler__last_stacks(const struct prof_sampler *s);

/* Sums the per-CPU counters of the BPF program (indexed by enum prof_stat). */
int prof_sampler__stats(struct prof_sampler *s, uint64_t out[PROF_STAT__COUNT]);

/*
 * 0 when the process may load BPF programs and open perf events, else
 * -EPERM with a one-line explanation naming what is missing in @why.
 */
int prof_check_privileges(char *why, size_t whylen);

#endif
