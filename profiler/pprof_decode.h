/* SPDX-License-Identifier: MIT */
/*
 * profiler/pprof_decode.h — pprof (profile.proto) back into a struct
 * prof_profile: the inverse of pprof_encode()/pprof_encode_raw(). The store
 * keeps intervals as pprof and decodes them to merge a query range.
 *
 * What comes back: every sample with its location list, every location with
 * all its lines, mappings (range, offset, file, build id, has_* flags) and
 * functions (name, system name, file); labels "comm", "thread" and
 * "container_id" (strings) and "pid" and "tid" (numbers); the count from the
 * "samples"/"count" value (or, for profiles without it, the first value). period, time_nanos and
 * duration_nanos. Samples with a count of 0 are dropped (the store writes
 * them, see store.c). Tables are rebuilt through prof_profile__add_sample(), so
 * ids are renumbered in order of first use and unreferenced entries are
 * dropped; for a profile that came from our encoder this gives back the same
 * tables, because the encoder's ids are the same order of first use.
 *
 * Malformed input (truncated protobuf, ids or string indexes that do not
 * resolve, negative counts) gives -EINVAL and never a crash: the data comes
 * from disk or from the network.
 */
#ifndef BPFPROF_PPROF_DECODE_H
#define BPFPROF_PPROF_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "profile.h"

/* Which samples to keep while decoding. Zero fields match everything. */
struct pprof_decode_filter {
	uint32_t pid; /* 0 = any process */
	const char *comm; /* exact process name, NULL = any */
	const char *container; /* container id or prefix (struct prof_filter), NULL = any */
};

/*
 * Decodes raw protobuf, or gzip-compressed protobuf (recognised by 1f 8b),
 * into a new profile in *@out that the caller frees with
 * prof_profile__free(). Returns 0, or -EINVAL (*@out is then NULL).
 */
int pprof_decode(const void *data, size_t len, struct prof_profile **out);

/*
 * Adds the samples of the profile in @data that match @f (NULL = all) to
 * @dst, as prof_profile__merge() would: @dst keeps its time_nanos unless it
 * is 0, its duration grows to cover the decoded one, its period is set if
 * it was 0. Cheaper than pprof_decode() + merge (no intermediate profile).
 * Returns 0 or -EINVAL; on -EINVAL @dst is unchanged (input is validated
 * before anything is added).
 */
int pprof_decode_into(const void *data, size_t len, const struct pprof_decode_filter *f,
		      struct prof_profile *dst);

#endif
