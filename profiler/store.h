/* SPDX-License-Identifier: MIT */
/*
 * profiler/store.h — the local profile history: one record per interval,
 * appended to segment files in a directory, queried by time range.
 * The on-disk format is documented in docs/STORE-FORMAT.md.
 *
 * Guarantees:
 *   - An append is one pwrite() of the whole record, then fdatasync(), so a
 *     kill -9 (or a power cut, given a disk that honours flushes) loses at
 *     most the interval being written.
 *   - prof_store__open() never fails because of bad data: a torn tail is
 *     truncated, a corrupt record or segment is skipped, counted and logged.
 *     It fails only when the directory itself cannot be used.
 *   - Retention (by age and by total size, whichever bites first) deletes
 *     whole segments, oldest first, after each append; the disk use stays
 *     under max_bytes (see the format document for the granularity).
 *   - The store never fills the disk: under the free-space floor an append
 *     is refused with -ENOSPC and counted; reads keep working.
 *
 * Threads: every function may be called from any thread. Appends are
 * serialised among themselves; a query holds the store's lock only to copy
 * the list of records it needs, then reads and decodes without it, so a
 * long query does not hold up the collector.
 */
#ifndef BPFPROF_STORE_H
#define BPFPROF_STORE_H

#include <stdint.h>

#include "profile.h"

struct prof_store;

struct prof_store_opts {
	const char *dir; /* created (mode 0700) if missing; copied */
	uint64_t max_age_ns; /* retention by age; 0 = 24 h */
	uint64_t max_bytes; /* retention by total size; 0 = 1 GiB */
	uint64_t min_free_bytes; /* free-space floor: refuse appends under it; 0 = 256 MiB */
};

struct prof_store_filter {
	uint32_t pid; /* 0 = any process */
	const char *comm; /* exact process name; NULL = any */
	const char *container; /* container id or prefix (struct prof_filter); NULL = any */
};

struct prof_store_stats {
	uint64_t bytes; /* size of all segment files */
	uint64_t segments; /* segment files, readable or not */
	uint64_t records; /* readable intervals */
	int64_t oldest_ns; /* start of the oldest readable interval, 0 if none */
	int64_t newest_ns; /* end of the newest readable interval, 0 if none */
	uint64_t appends; /* intervals stored since open */
	uint64_t write_errors; /* appends that failed in write/fsync/create */
	uint64_t corrupt_records; /* bad records skipped (at open or at read) */
	uint64_t corrupt_segments; /* segment files with a bad header, skipped */
	uint64_t torn_tails_truncated; /* torn tails cut off at open */
	uint64_t dropped_for_space; /* appends refused under the floor or on ENOSPC */
	int64_t last_append_ns; /* wall clock of the last successful append, 0 = none */
	uint64_t table_bytes; /* memory of the active segment's tables (bounded: 2 MiB) */
};

/*
 * Opens (creating if needed) the store in @opts->dir and indexes every
 * segment in it. Returns NULL with errno set (ENOTDIR, EACCES, ...) only
 * when the directory cannot be created, read or written.
 * Free with prof_store__close().
 */
struct prof_store *prof_store__open(const struct prof_store_opts *opts);

/*
 * Appends one interval: @interval->time_nanos and ->duration_nanos are the
 * record's time range. Returns 0 or -errno: -ENOSPC under the free-space
 * floor (counted in dropped_for_space, logged once per transition), or the
 * error of a failed write (counted in write_errors; the partial record is
 * cut off again). Never fatal: the next append tries again.
 */
int prof_store__append(struct prof_store *s, const struct prof_profile *interval);

/*
 * Merges every stored interval overlapping [@start_ns, @end_ns) into one new
 * profile in *@out (the caller frees it), keeping only samples that match
 * @f (NULL = all). Its time_nanos is the start of the first interval and its
 * duration runs to the end of the last one; with no interval in range it is
 * an empty profile spanning [start, end). Records found corrupt while
 * reading are skipped and counted, with every later record of their
 * segment (each builds on the ones before it). Returns 0, or -EINVAL when
 * end <= start. O(records in the store) to select, then every segment with
 * a record in range is decoded from its start to its last such record
 * (tables once per segment, counts summed by stack id, one merge per
 * segment).
 */
int prof_store__query(struct prof_store *s, int64_t start_ns, int64_t end_ns,
		      const struct prof_store_filter *f, struct prof_profile **out);

/*
 * Called by prof_store__query_intervals() once per stored interval, in time
 * order: its start and length (ns), the samples in it that passed the
 * filter (0 when none did), and its sampling period (ns per sample).
 */
typedef void (*prof_store_interval_fn)(void *ctx, int64_t time_ns, int64_t duration_ns,
				       uint64_t samples, int64_t period_ns);

/*
 * The per-interval totals of [@start_ns, @end_ns) for CPU over time: @fn is
 * called for every stored interval overlapping the range. Cheaper than
 * prof_store__query(): each record is decompressed and unpacked once, and
 * only its sample counts are read (no profile is built). Intervals the
 * agent had nothing to store for (no samples at all) are absent. Returns 0,
 * or -EINVAL when end <= start or @fn is NULL; corrupt records are skipped
 * and counted as in prof_store__query().
 */
int prof_store__query_intervals(struct prof_store *s, int64_t start_ns, int64_t end_ns,
				const struct prof_store_filter *f, prof_store_interval_fn fn,
				void *ctx);

/* One stored interval: [start_ns, end_ns). */
struct prof_store_range {
	int64_t start_ns, end_ns;
};

/*
 * The time ranges of the stored intervals overlapping [@start_ns, @end_ns),
 * in time order, from the index in memory: no file is read, so it is cheap
 * enough to call at start-up on a full store (O(records)). A record that
 * turns out corrupt when read later is still listed. *@out is a new array
 * of *@n entries (the caller frees it; NULL when there are none). Returns 0,
 * or -EINVAL when end <= start.
 */
int prof_store__ranges(struct prof_store *s, int64_t start_ns, int64_t end_ns,
		       struct prof_store_range **out, size_t *n);

/* A consistent snapshot of the counters. */
void prof_store__stats(const struct prof_store *s, struct prof_store_stats *st);

/* Closes files and frees the store. NULL is a no-op. */
void prof_store__close(struct prof_store *s);

#endif
