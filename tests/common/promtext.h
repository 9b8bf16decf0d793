/* SPDX-License-Identifier: MIT */
/*
 * tests/common/promtext.h — a strict checker of the Prometheus text
 * exposition format 0.0.4 (what promtool check metrics enforces, plus the
 * lint rule that counters end in _total), for testing /metrics. Debian's
 * prometheus package that ships promtool installs ~96 MB with a web UI's
 * JavaScript; this is ~250 lines.
 */
#ifndef BPFPROF_PROMTEXT_H
#define BPFPROF_PROMTEXT_H

#include <stddef.h>

struct prom_family {
	char name[128];
	char type[16]; /* counter, gauge, histogram, summary, untyped */
	size_t samples;
};

struct prom_result {
	struct prom_family *families; /* in order of appearance; free with prom_result__free */
	size_t nfamilies;
	size_t samples;
	char error[256]; /* the first problem, with its line number, "" when valid */
};

/*
 * Checks @text (NUL-terminated). Returns 0 when it is valid, else -1 with
 * res->error set. Rules: every line ends in '\n'; "# HELP name text" and
 * "# TYPE name type" at most once per family, TYPE before its samples;
 * metric and label names valid, label names not starting with "__" and not
 * repeated in a sample; label values with only \\, \" and \n escapes;
 * values are Go floats (NaN, +Inf, -Inf), an optional integer timestamp;
 * a family's samples contiguous; no series twice; counters end in _total
 * and are not negative; histogram/summary samples use their suffixes.
 */
int prom_check(const char *text, struct prom_result *res);
void prom_result__free(struct prom_result *res);

/* The family named @name, or NULL. */
const struct prom_family *prom_find(const struct prom_result *res, const char *name);

#endif
