/* SPDX-License-Identifier: MIT */
/*
 * profiler/encode.h — the output formats. Each encoder reads a finished
 * struct prof_profile and appends bytes to a strbuf; none of them keeps
 * state between calls, so they may run concurrently on different profiles
 * (the HTTP server does that).
 */
#ifndef BPFPROF_ENCODE_H
#define BPFPROF_ENCODE_H

#include "../common/util.h"
#include "profile.h"

/*
 * pprof (profile.proto), gzip-compressed. sample_type = [samples/count,
 * cpu/nanoseconds], period_type = cpu/nanoseconds, period = p->period_ns.
 * Labels per sample: string "comm" and "thread", numeric "pid" and "tid", and
 * string "container_id" for processes in a container.
 * Returns 0 or -errno (-EIO when zlib fails).
 */
int pprof_encode(const struct prof_profile *p, struct strbuf *out);

/* The same, without gzip (for tests and tools that want raw protobuf). */
int pprof_encode_raw(const struct prof_profile *p, struct strbuf *out);

/*
 * Folded stacks: one line per distinct stack, "comm;root;...;leaf count\n",
 * sorted by stack text. Samples of different pids with the same comm and
 * frames are added up. Inlined frames (several lines per location) come out
 * as frames, outermost first. ';' and newlines inside names are replaced
 * so that every line parses.
 */
#define FOLDED_WITH_PID 0x1 /* first frame is "comm-pid" instead of "comm" */
int folded_encode(const struct prof_profile *p, struct strbuf *out, unsigned flags);

struct flamegraph_opts {
	const char *title; /* NULL = "CPU flame graph" */
	const char *subtitle; /* NULL = none; e.g. host and time range */
	int width; /* pixels, 0 = 1200 */
	bool inverted; /* icicle: roots at the top */
};

/*
 * A self-contained interactive SVG flame graph (inline CSS and JavaScript):
 * click a frame to zoom, "Reset zoom", regex search that highlights matches
 * and shows the matched percentage, and a <title> on every frame with its
 * sample count and percentage. The root frame is "all", the first level is
 * the process name (as in folded output). Colors are stable: a hash of the
 * function name picks the hue, kernel frames get their own palette.
 */
int flamegraph_encode(const struct prof_profile *p, struct strbuf *out,
		      const struct flamegraph_opts *opts);

/*
 * Output format for a file name: ".pb.gz" or ".pprof" -> PROF_FMT_PPROF,
 * ".folded" or ".txt" -> PROF_FMT_FOLDED, ".svg" -> PROF_FMT_SVG.
 * Returns -EINVAL for anything else.
 */
enum prof_format {
	PROF_FMT_PPROF = 1,
	PROF_FMT_FOLDED,
	PROF_FMT_SVG,
};
int prof_format_from_path(const char *path);

/* Encodes in @fmt with default options. 0 or -errno. */
int prof_encode(const struct prof_profile *p, enum prof_format fmt, struct strbuf *out);

#endif
