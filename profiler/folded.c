// SPDX-License-Identifier: MIT
/*
 * profiler/folded.c — folded stacks, the text format of flamegraph.pl's
 * stackcollapse-* scripts: "frame;frame;...;frame count\n", root first.
 *
 * Every sample is rendered to its line text once; the texts are sorted and
 * equal neighbours added up, which both orders the output and merges stacks
 * that differ only in what folded text does not show (pid, tid, thread,
 * addresses). O(S log S) string compares for S samples.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"

struct folded_line {
	size_t off; /* of the NUL-terminated stack text in the text buffer */
	uint64_t count;
};

/*
 * Appends one frame name. ';' separates frames and '\n' lines, so both (and
 * '\r') are replaced; an empty name would make an empty frame, which parsers
 * read as a missing one.
 */
static void add_frame(struct strbuf *sb, const char *name)
{
	size_t start = sb->len, i;

	if (!*name)
		name = "[unknown]";
	strbuf_adds(sb, name);
	for (i = start; i < sb->len; i++) {
		if (sb->buf[i] == ';')
			sb->buf[i] = ':';
		else if (sb->buf[i] == '\n' || sb->buf[i] == '\r')
			sb->buf[i] = ' ';
	}
}

static void add_stack(const struct prof_profile *p, const struct prof_sample *s, struct strbuf *sb,
		      unsigned flags)
{
	uint32_t i, j;

	add_frame(sb, prof_str(p, s->comm));
	if (flags & FOLDED_WITH_PID)
		strbuf_addf(sb, "-%u", s->pid);
	/* sample_locs is leaf first and a location's lines innermost first: walk both backwards. */
	for (i = s->nlocs; i-- > 0;) {
		uint32_t id = p->sample_locs[s->loc_start + i];
		const struct prof_location *l;

		if (!id || id > p->nlocations) {
			strbuf_adds(sb, ";[unknown]");
			continue;
		}
		l = &p->locations[id - 1];
		if (!l->nlines)
			strbuf_adds(sb, ";[unknown]");
		for (j = l->nlines; j-- > 0;) {
			uint32_t fid = p->lines[l->line_start + j].function;

			strbuf_addc(sb, ';');
			add_frame(sb, fid && fid <= p->nfunctions
					      ? prof_str(p, p->functions[fid - 1].name)
					      : "");
		}
	}
}

static int cmp_lines(const void *a, const void *b, void *text)
{
	const struct folded_line *x = a, *y = b;

	return strcmp((const char *)text + x->off, (const char *)text + y->off);
}

int folded_encode(const struct prof_profile *p, struct strbuf *out, unsigned flags)
{
	struct strbuf text = STRBUF_INIT;
	struct folded_line *lines;
	uint32_t i, n = 0;

	if (flags & ~FOLDED_WITH_PID)
		return -EINVAL;
	lines = xmalloc(((size_t)p->nsamples + 1) * sizeof(*lines));
	for (i = 0; i < p->nsamples; i++) {
		if (!p->samples[i].count)
			continue;
		lines[n].off = text.len;
		lines[n].count = p->samples[i].count;
		add_stack(p, &p->samples[i], &text, flags);
		strbuf_addc(&text, '\0');
		n++;
	}
	qsort_r(lines, n, sizeof(*lines), cmp_lines, text.buf);
	for (i = 0; i < n; i++) {
		const char *stack = text.buf + lines[i].off;
		uint64_t count = lines[i].count;

		while (i + 1 < n && strcmp(stack, text.buf + lines[i + 1].off) == 0)
			count += lines[++i].count;
		strbuf_addf(out, "%s %llu\n", stack, (unsigned long long)count);
	}
	free(lines);
	strbuf_release(&text);
	return 0;
}
