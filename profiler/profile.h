/* SPDX-License-Identifier: MIT */
/*
 * profiler/profile.h — the in-memory, symbolized profile that every stage
 * hands to the next: the collector builds one per drain and per window, the
 * encoders (pprof, folded, flame graph) only read it.
 *
 * The layout mirrors pprof's Profile message so that the pprof encoder is a
 * straight walk, and every table is deduplicated on insertion:
 *
 *   strings[0] is always "" (pprof requires it).
 *   mappings[i]  has pprof id i + 1;  locations[i] has id i + 1;
 *   functions[i] has id i + 1.        Ids therefore run 1..N in array order,
 *                                     which Parca requires.
 *   A location owns lines[line_start .. line_start + nlines): the inlined
 *   frames innermost first, the physical function last (pprof's order).
 *   A sample owns sample_locs[loc_start .. loc_start + nlocs): location ids,
 *   leaf first (pprof's order).
 *
 * Every table is read-only outside profile.c: add data with
 * prof_profile__add_sample() and prof_profile__merge() only, so the dedup
 * indexes stay consistent.
 *
 * Values: each sample counts @count samples; its cpu/nanoseconds value is
 * count * period_ns (computed by the encoders).
 */
#ifndef BPFPROF_PROFILE_H
#define BPFPROF_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prof_mapping {
	uint64_t start; /* memory_start */
	uint64_t limit; /* memory_limit (exclusive) */
	uint64_t offset; /* file offset of @start */
	uint32_t filename; /* string index */
	uint32_t build_id; /* string index, 0 when unknown */
	/*
	 * pprof's has_* flags: true when the mapping was symbolized that far
	 * (names; DWARF files, lines and inline frames), even if one location
	 * had nothing to find. Merged with OR when the same mapping is added twice.
	 */
	bool has_functions;
	bool has_filenames;
	bool has_line_numbers;
	bool has_inline_frames;
};

struct prof_function {
	uint32_t name; /* string index: display (demangled) name */
	uint32_t system_name; /* string index: mangled/raw name */
	uint32_t filename; /* string index, 0 when unknown */
	int64_t start_line; /* 0 when unknown */
};

struct prof_line {
	uint32_t function; /* function id (1-based) */
	int64_t line; /* 0 when unknown */
};

struct prof_location {
	uint32_t mapping; /* mapping id (1-based), 0 = none */
	uint64_t address; /* address in the process (or kernel) address space */
	uint32_t line_start; /* index into lines[] */
	uint32_t nlines;
};

struct prof_sample {
	uint32_t loc_start; /* index into sample_locs[] */
	uint32_t nlocs;
	uint32_t pid; /* process id (tgid) */
	uint32_t tid; /* thread id */
	uint32_t comm; /* string index: process name */
	uint32_t thread; /* string index: thread name */
	uint64_t count;
	uint32_t container; /* string index: container id (64 hex), 0 = none */
};

struct prof_profile {
	char **strings;
	uint32_t nstrings;
	struct prof_mapping *mappings;
	uint32_t nmappings;
	struct prof_function *functions;
	uint32_t nfunctions;
	struct prof_location *locations;
	uint32_t nlocations;
	struct prof_line *lines;
	uint32_t nlines;
	uint32_t *sample_locs;
	uint32_t nsample_locs;
	struct prof_sample *samples;
	uint32_t nsamples;

	int64_t time_nanos; /* wall clock at the start of the profile */
	int64_t duration_nanos; /* length of the window */
	int64_t period_ns; /* 1e9 / sampling frequency */
	uint64_t total_count; /* sum of samples[].count */

	struct prof_profile_index *idx; /* private: dedup hash tables */
};

/*
 * Input structs for prof_profile__add_sample(). Strings are copied; the
 * caller keeps ownership of everything it passes.
 */
struct prof_mapping_in {
	uint64_t start, limit, offset;
	const char *file; /* e.g. "/usr/lib/x86_64-linux-gnu/libc.so.6", "[kernel.kallsyms]" */
	const char *build_id; /* lowercase hex, or NULL */
	bool has_functions, has_filenames, has_line_numbers, has_inline_frames;
};

struct prof_line_in {
	const char *name; /* display name; NULL becomes "[unknown]" */
	const char *system_name; /* raw name; NULL = same as name */
	const char *file; /* source file or NULL */
	int64_t line; /* 0 when unknown */
};

struct prof_loc_in {
	uint64_t address;
	const struct prof_mapping_in *mapping; /* NULL = no mapping */
	const struct prof_line_in *lines; /* innermost first */
	uint32_t nlines;
};

struct prof_sample_in {
	uint32_t pid, tid;
	const char *comm; /* process name */
	const char *thread; /* thread name */
	const struct prof_loc_in *locs; /* leaf first */
	uint32_t nlocs;
	uint64_t count;
	const char *container; /* container id, NULL or "" = none (last: positional inits) */
};

/* A new, empty profile. Never NULL (allocation failure aborts). */
struct prof_profile *prof_profile__new(int64_t period_ns);
/* Frees the profile and everything in it. NULL is a no-op. */
void prof_profile__free(struct prof_profile *p);

/* Interns @s and returns its string index (0 for "" or NULL). */
uint32_t prof_profile__intern(struct prof_profile *p, const char *s);

/*
 * Adds one stack. Samples with the same labels and the same location list
 * are merged (their counts add up). O(nlocs) hash lookups.
 */
void prof_profile__add_sample(struct prof_profile *p, const struct prof_sample_in *s);

/*
 * Adds every sample of @src to @dst, re-interning strings, mappings,
 * functions and locations. @dst keeps its own time_nanos unless it is 0,
 * and its duration is extended to cover @src. O(size of src).
 */
void prof_profile__merge(struct prof_profile *dst, const struct prof_profile *src);

/*
 * A copy of @p whose function names carry their source position, as
 * "name (file.c:12)" (base name of the file; names without a line stay as
 * they are), for folded stacks and flame graphs with lines. The caller
 * frees it. O(size of p).
 */
struct prof_profile *prof_profile__with_line_names(const struct prof_profile *p);

/*
 * A copy of @p with only the samples of process @pid (0 = any) named @comm
 * (NULL = any). The caller frees it. O(size of p).
 */
struct prof_profile *prof_profile__filter(const struct prof_profile *p, uint32_t pid,
					  const char *comm);

/*
 * Which samples to keep; zero fields match everything. The same rules for
 * live windows (prof_profile__filter_by), the store and pprof decoding.
 */
struct prof_filter {
	uint32_t pid; /* process id (tgid); 0 = any */
	const char *comm; /* exact process name; NULL = any */
	/*
	 * Container id: the full 64-hex id or a prefix of at least
	 * PROF_CONTAINER_PREFIX_MIN hex digits (as `docker ps` shows); NULL = any.
	 * Samples without a container never match.
	 */
	const char *container;
};

#define PROF_CONTAINER_ID_LEN 64
#define PROF_CONTAINER_PREFIX_MIN 12

/* Whether @v is a valid container= value: 12..64 lowercase hex digits. */
bool prof_filter_container_ok(const char *v);

/* Whether a sample with these labels passes @f (NULL passes everything). */
bool prof_filter__match(const struct prof_filter *f, uint32_t pid, const char *comm,
			const char *container);

/* prof_profile__filter() with every filter. The caller frees the copy. O(size of p). */
struct prof_profile *prof_profile__filter_by(const struct prof_profile *p,
					     const struct prof_filter *f);

/* String by index; "" for out-of-range indexes. */
static inline const char *prof_str(const struct prof_profile *p, uint32_t i)
{
	return i < p->nstrings ? p->strings[i] : "";
}

#endif
