/* SPDX-License-Identifier: MIT */
/*
 * tests/common/pprof_read.h — helpers for tests that check pprof output
 * (unit tests of the encoders, end-to-end tests of `bpfprof record` and of
 * /debug/pprof/profile): decode a profile, validate its ids, and render
 * samples as text that a test can compare with a known truth.
 *
 * The decoded profile is protobuf-c's generated struct (pprof.pb-c.h, built
 * from profiler/pprof.proto). Every id argument below is a pprof id (1-based);
 * every string index is an index into string_table.
 */
#ifndef BPFPROF_TESTS_PPROF_READ_H
#define BPFPROF_TESTS_PPROF_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pprof.pb-c.h"

#include "../../common/util.h"
#include "../../profiler/profile.h"

/* ---- decoding ------------------------------------------------------------- */

/*
 * Inflates gzip (or zlib) data and appends it to @out. 0, -EINVAL for data
 * that is not a complete gzip/zlib stream, -EFBIG past 1 GiB.
 */
int pprof_gunzip(const void *data, size_t len, struct strbuf *out);

/*
 * Decodes a profile: gzip-compressed (what bpfprof writes and serves,
 * recognised by its magic bytes 1f 8b) or raw protobuf. Returns NULL, with a
 * one-line reason on stderr, when the data is neither. The caller owns the
 * result and frees it with pprof_free().
 */
Perftools__Profiles__Profile *pprof_read(const void *data, size_t len);

/* pprof_read() of a whole file. NULL when the file cannot be read or parsed. */
Perftools__Profiles__Profile *pprof_read_file(const char *path);

/* Frees a profile from pprof_read(). NULL is a no-op. */
void pprof_free(Perftools__Profiles__Profile *pb);

/* ---- validation ----------------------------------------------------------- */

/*
 * Checks what Parca and `go tool pprof` rely on:
 *   - string_table is not empty and string_table[0] is "";
 *   - mapping, location and function ids are 1..N in array order;
 *   - every referenced id exists (location -> mapping, line -> function,
 *     sample -> location; mapping id 0 means "none" and is allowed);
 *   - every string index (names, files, build ids, label keys and values,
 *     value types, default_sample_type, comments) is inside string_table;
 *   - every sample has one value per sample_type.
 * Returns 0, or -EINVAL with the first problem written to @err (@errlen
 * bytes, NUL-terminated; @err may be NULL).
 */
int pprof_check_ids(const Perftools__Profiles__Profile *pb, char *err, size_t errlen);

/* ---- lookups (none of them allocates; pointers live as long as @pb) -------- */

/* string_table[@idx], or NULL when @idx is out of range. */
const char *pprof_str(const Perftools__Profiles__Profile *pb, int64_t idx);

/*
 * The mapping, location or function with pprof id @id, or NULL. O(1) when
 * ids are 1..N in array order (what pprof_check_ids() checks), else a scan.
 */
const Perftools__Profiles__Mapping *pprof_mapping(const Perftools__Profiles__Profile *pb,
						  uint64_t id);
const Perftools__Profiles__Location *pprof_location(const Perftools__Profiles__Profile *pb,
						    uint64_t id);
const Perftools__Profiles__Function *pprof_function(const Perftools__Profiles__Profile *pb,
						    uint64_t id);

/* The index in Sample.value of the sample type @type/@unit ("cpu", "nanoseconds"), or -1. */
int pprof_value_index(const Perftools__Profiles__Profile *pb, const char *type, const char *unit);

/* The string value of label @key of @s ("comm", "thread"), or NULL if it has none. */
const char *pprof_label_str(const Perftools__Profiles__Profile *pb,
			    const Perftools__Profiles__Sample *s, const char *key);

/*
 * The numeric value of label @key of @s ("pid", "tid") in *@val. Returns
 * false if @s has no numeric label @key.
 */
bool pprof_label_num(const Perftools__Profiles__Profile *pb, const Perftools__Profiles__Sample *s,
		     const char *key, int64_t *val);

/*
 * Appends the stack of @s to @out as "root;...;leaf" function names:
 * locations are stored leaf first and a location's lines innermost first,
 * so both are walked backwards (inlined frames come out outermost first).
 * A location without lines is "[unknown]". Names are copied as they are
 * (no escaping of ';'), and there is no process-name frame: folded output
 * is "comm;" followed by this text, once ';' in names is replaced.
 * Returns 0, or -EINVAL when an id does not resolve (the text then holds
 * "[bad id]" for that frame).
 */
int pprof_sample_stack(const Perftools__Profiles__Profile *pb, const Perftools__Profiles__Sample *s,
		       struct strbuf *out);

/* ---- a known profile -------------------------------------------------------- */

/*
 * Builds the profile the encoder tests are written against; every test that
 * uses it asserts on the facts listed here, so change both together.
 *
 *   period_ns 10101010 (99 Hz), time_nanos 1700000000000000000,
 *   duration_nanos 10000000000.
 *   Mappings, in id order:
 *     1 /usr/bin/app  [0x400000, 0x500000) offset 0, build id
 *       "aabbccdd00112233aabbccdd00112233aabbccdd", all has_* true
 *     2 /usr/lib/x86_64-linux-gnu/libc.so.6  [0x7f0000000000, 0x7f0000200000)
 *       offset 0x28000, build id "0123456789abcdef0123456789abcdef01234567",
 *       has_functions only
 *     3 [kernel.kallsyms]  [0xffffffff81000000, 0xffffffff83000000), no build
 *       id, has_functions only
 *     4 [vdso]  [0x7ffd00000000, 0x7ffd00002000), nothing known
 *   Samples (pid tid comm thread: stack root->leaf = count):
 *     100 100 app app:        main;work;inner_inlined = 5   (work and
 *                             inner_inlined are one location, 2 lines)
 *     100 101 app worker:     main;std::vector<int&>::push;back;memcpy = 3
 *     100 101 app worker:     main;memcpy;entry_SYSCALL_64;ksys_write = 2
 *                             (the last two in the kernel mapping)
 *     200 200 app app:        main;work;inner_inlined = 4
 *     300 300 db db-io:       memcpy;[unknown] = 1  (the vdso location has no lines)
 *       0   0 swapper/0 swapper/0: do_idle = 6  (kernel)
 *   total_count 21.
 *
 * The caller owns the result (prof_profile__free()).
 */
struct prof_profile *pprof_test_profile(void);

#endif
