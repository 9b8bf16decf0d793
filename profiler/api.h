/* SPDX-License-Identifier: MIT */
/*
 * profiler/api.h — the JSON answers of the agent's /api/... routes, for the
 * web page: CPU over time, top functions, processes. Like the encoders in
 * encode.h they read finished data and append bytes to a strbuf; the JSON
 * is written with jansson (escaping, UTF-8 checks, number formatting).
 *
 * Times in the JSON are Unix seconds (numbers, fractions allowed): a
 * browser's Date takes them times 1000, and nanoseconds since the epoch do
 * not fit a JavaScript number exactly.
 */
#ifndef BPFPROF_API_H
#define BPFPROF_API_H

#include <stddef.h>
#include <stdint.h>

#include "../common/util.h"
#include "profile.h"

/* One stored interval: its time range and the samples in it that passed the filter. */
struct api_point {
	int64_t time_ns;
	int64_t duration_ns;
	uint64_t samples;
};

/* CPU over time. Zero-initialise; release with api_series__release(). */
struct api_series {
	struct api_point *points; /* in time order */
	size_t n, cap;
	int64_t period_ns; /* ns of CPU per sample (1e9 / frequency), 0 = unknown */
};

/*
 * Appends a point (for prof_store_interval_fn: @ctx is the struct
 * api_series). A period seen here becomes the series' if it had none.
 */
void api_series__add(void *ctx, int64_t time_ns, int64_t duration_ns, uint64_t samples,
		     int64_t period_ns);
void api_series__release(struct api_series *s);

/*
 * {"start": s, "end": s, "period_seconds": x, "points": [{"time": s,
 *  "duration": s, "samples": n, "cpu_seconds": x, "cores": x}, ...]}
 * cpu_seconds = samples * period; cores = cpu_seconds / duration (CPUs kept
 * busy on average). @start_ns/@end_ns are the requested range. 0 or -errno.
 */
int api_timeseries_json(const struct api_series *s, int64_t start_ns, int64_t end_ns,
			struct strbuf *out);

enum api_sort {
	API_SORT_SELF, /* by self samples, then total */
	API_SORT_TOTAL, /* by total samples, then self */
};

/*
 * Top functions of @p, at most @limit (0 = all):
 * {"start": s, "end": s, "total_samples": n, "functions": [{"name": ...,
 *  "file": ... (or absent), "self": n, "self_fraction": x, "total": n,
 *  "total_fraction": x}, ...]}
 * self counts the samples whose innermost frame (inlined frames included)
 * is the function; total the samples it is anywhere in the stack, once per
 * sample (recursion is not counted twice). Fractions are of total_samples.
 * Ties are broken by name, so the order is stable. 0 or -errno.
 * O(stack frames of p + functions log functions).
 */
int api_top_json(const struct prof_profile *p, unsigned int limit, enum api_sort sort,
		 struct strbuf *out);

/*
 * The processes in @p, most samples first, at most @limit (0 = all):
 * {"start": s, "end": s, "total_samples": n, "processes": [{"pid": n,
 *  "comm": ..., "container_id": ... (only when in a container), "samples": n,
 *  "cpu_seconds": x, "share": x}, ...]}
 * One entry per (pid, comm, container): a pid that exec'd shows once per
 * program name. share is of total_samples. 0 or -errno.
 */
int api_processes_json(const struct prof_profile *p, unsigned int limit, struct strbuf *out);

#endif
