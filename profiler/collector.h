/* SPDX-License-Identifier: MIT */
/*
 * profiler/collector.h — the agent's engine: one thread that owns the
 * sampler, the process tracker and the symbolizer caches. It drains the
 * kernel's counts (every drain_ms, and whenever a window opens or closes),
 * symbolizes each drained batch once, and merges it into every open window.
 *
 * A window is "the samples of the next N seconds". Any number may be open at
 * once and they may overlap (Parca and Alloy scraping the same agent); each
 * gets its own profile. A window opened at time T receives exactly the
 * batches whose drain started at or after T (opening a window forces a
 * drain), and closes with the first drain at or after T + N, which the
 * collector schedules for T + N.
 */
#ifndef BPFPROF_COLLECTOR_H
#define BPFPROF_COLLECTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "../bpf/profile.h"
#include "../symbolizer/symbolizer.h"
#include "profile.h"
#include "proc.h"
#include "unwind.h"

/*
 * Receives every interval's profile, on the collector thread, and owns it
 * (free it with prof_profile__free()). Intervals are back to back: every
 * drained sample lands in exactly one. Empty intervals are not handed out.
 */
typedef void (*prof_interval_fn)(void *ctx, struct prof_profile *interval);

struct prof_collector_opts {
	unsigned int freq; /* Hz per CPU; 0 = 99 */
	int pid; /* only this process; 0 = every process */
	bool no_kernel; /* skip kernel stacks */
	unsigned int drain_ms; /* periodic drain; 0 = 5000 */
	const char *kallsyms; /* NULL = "/proc/kallsyms" */
	uint32_t max_stacks; /* entries per stacks map, 0 = default */
	uint32_t max_counts; /* entries per counts map, 0 = default */
	uint64_t dwarf_budget; /* bytes libdw sessions may take (sym_dsos__set_dwarf_budget) */
	/* bytes for files no process maps any more (sym_dsos__set_idle_budget) */
	uint64_t idle_budget;
	/*
	 * ... and how long they stay at most (sym_dsos__expire_idle); also how
	 * long DWARF no sample asked for stays open (sym_dsos__expire_dwarf).
	 * 0 = no limit.
	 */
	uint64_t idle_ttl_ms;
	uint64_t interval_ms; /* 0 = no intervals; else boundaries at wall-clock multiples */
	prof_interval_fn interval_fn; /* see prof_interval_fn */
	void *interval_ctx;
	bool fp_only; /* unwind user stacks with frame pointers only (no CFI tables) */
	uint32_t unwind_rows; /* entries of the BPF unwind row array, 0 = default */
};

struct prof_collector_stats {
	uint64_t bpf[PROF_STAT__COUNT]; /* the BPF program's counters */
	uint64_t samples; /* samples drained and symbolized */
	uint64_t kstacks_lost; /* samples whose kernel stack was lost */
	uint64_t ustacks_lost; /* samples whose user stack was lost */
	uint64_t ustacks_truncated; /* samples whose user stack hit the depth limit */
	uint64_t leaf_fixups; /* samples whose skipped caller was restored (see skipped_caller) */
	uint64_t frames; /* frames symbolized */
	uint64_t frames_unknown; /* ... that got no symbol ([unknown] or module+0xoff) */
	uint64_t frames_dwarf; /* ... that got DWARF source lines (and inline frames) */
	uint64_t drains;
	uint64_t intervals; /* intervals handed to opts.interval_fn */
	uint32_t map_counts_used, map_stacks_used; /* entries the last drain found */
	uint32_t map_counts_cap, map_stacks_cap; /* entries per map */
	uint64_t drain_errors;
	uint64_t windows; /* windows completed */
	uint64_t kallsyms_symbols;
	uint64_t kallsyms_reloads; /* re-reads after kernel addresses had no symbol */
	int ncpus;
	unsigned int freq;
	struct prof_procs_stats procs;
	struct sym_stats sym;
	bool cfi; /* user stacks are unwound with CFI tables */
	uint64_t unwind_stops[PROF_UW__COUNT]; /* how BPF stack walks ended */
	struct prof_unwinder_stats unwind; /* tables, and snapshots finished in user space */
	uint64_t snapshots_pending_max; /* most snapshots waiting for one drain */
};

struct prof_collector;
struct prof_window;

/*
 * Loads and attaches the BPF programs and starts the collector thread.
 * NULL with errno set (the reason has been logged in one line).
 */
struct prof_collector *prof_collector__start(const struct prof_collector_opts *opts);

/*
 * Stops sampling: a last drain goes into every open window, which then
 * completes early with what it has; later window_begin() calls fail with
 * ECANCELED. Idempotent.
 */
void prof_collector__stop(struct prof_collector *c);

/*
 * Async-signal-safe request to stop (from a SIGINT/SIGTERM handler); the
 * collector thread then behaves as after prof_collector__stop().
 */
void prof_collector__stop_async(struct prof_collector *c);
bool prof_collector__stopped(struct prof_collector *c);

/* Stops (if needed), joins the thread, detaches everything, frees. NULL is a no-op. */
void prof_collector__free(struct prof_collector *c);

/* Opens a window of @duration_ms. NULL with errno = ECANCELED after stop. */
struct prof_window *prof_collector__window_begin(struct prof_collector *c, uint64_t duration_ms);

/*
 * Waits up to @timeout_ms (-1 = forever) for @w to complete. On completion
 * returns 0, hands its profile to the caller (*@out, free it with
 * prof_profile__free()) and frees @w. -ETIMEDOUT while it is still open.
 */
int prof_window__wait(struct prof_collector *c, struct prof_window *w, int timeout_ms,
		      struct prof_profile **out);

/* Milliseconds left in @w (0 when due). */
uint64_t prof_window__remaining_ms(struct prof_collector *c, struct prof_window *w);

/* begin + wait(-1). 0 or -errno (-ECANCELED after stop). */
int prof_collector__window(struct prof_collector *c, unsigned int seconds,
			   struct prof_profile **out);

void prof_collector__stats(struct prof_collector *c, struct prof_collector_stats *out);

#endif
