// SPDX-License-Identifier: MIT
/*
 * profiler/format.c — picks an encoder from a file name and runs it with
 * default options (used by `bpfprof record -o FILE` and the HTTP server).
 */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "encode.h"

static const struct {
	const char *suffix;
	enum prof_format fmt;
} suffixes[] = {
	{".pb.gz", PROF_FMT_PPROF}, {".pprof", PROF_FMT_PPROF}, {".folded", PROF_FMT_FOLDED},
	{".txt", PROF_FMT_FOLDED},  {".svg", PROF_FMT_SVG},
};

int prof_format_from_path(const char *path)
{
	size_t len, i;

	if (!path)
		return -EINVAL;
	len = strlen(path);
	for (i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t n = strlen(suffixes[i].suffix);

		/* A bare ".svg" names no file; "CPU.SVG" is as clear as "cpu.svg". */
		if (len > n && path[len - n - 1] != '/' &&
		    strcasecmp(path + len - n, suffixes[i].suffix) == 0)
			return suffixes[i].fmt;
	}
	return -EINVAL;
}

int prof_encode(const struct prof_profile *p, enum prof_format fmt, struct strbuf *out)
{
	switch (fmt) {
	case PROF_FMT_PPROF:
		return pprof_encode(p, out);
	case PROF_FMT_FOLDED:
		return folded_encode(p, out, 0);
	case PROF_FMT_SVG:
		return flamegraph_encode(p, out, NULL);
	}
	return -EINVAL;
}
