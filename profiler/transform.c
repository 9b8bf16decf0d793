// SPDX-License-Identifier: MIT
/*
 * Derived profiles for the text outputs. pprof carries file and line in
 * its Line messages; folded stacks and flame graphs only have names, so
 * "with lines" there means a profile whose function names include them.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "profile.h"

/* A mapping of @p as input for prof_profile__add_sample() (strings point into @p). */
static struct prof_mapping_in mapping_in(const struct prof_profile *p, const struct prof_mapping *m)
{
	return (struct prof_mapping_in){
		.start = m->start,
		.limit = m->limit,
		.offset = m->offset,
		.file = prof_str(p, m->filename),
		.build_id = m->build_id ? prof_str(p, m->build_id) : NULL,
		.has_functions = m->has_functions,
		.has_filenames = m->has_filenames,
		.has_line_numbers = m->has_line_numbers,
		.has_inline_frames = m->has_inline_frames,
	};
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

struct prof_profile *prof_profile__with_line_names(const struct prof_profile *p)
{
	struct prof_profile *out = prof_profile__new(p->period_ns);
	struct prof_mapping_in *maps = NULL;
	struct prof_loc_in *locs = NULL;
	struct prof_line_in *lines = NULL;
	size_t *name_off = NULL, mcap = 0, lcap = 0, ncap = 0, ocap = 0;
	struct strbuf names = STRBUF_INIT;

	out->time_nanos = p->time_nanos;
	out->duration_nanos = p->duration_nanos;
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		struct prof_sample_in in;
		size_t nl = 0;

		strbuf_reset(&names);
		xgrow((void **)&maps, &mcap, s->nlocs, sizeof(*maps));
		xgrow((void **)&locs, &ocap, s->nlocs, sizeof(*locs));
		/* First pass: every line's name into one buffer (it may move while it grows). */
		for (uint32_t k = 0; k < s->nlocs; k++) {
			const struct prof_location *l =
				&p->locations[p->sample_locs[s->loc_start + k] - 1];

			xgrow((void **)&lines, &lcap, nl + l->nlines, sizeof(*lines));
			xgrow((void **)&name_off, &ncap, nl + l->nlines, sizeof(*name_off));
			for (uint32_t j = 0; j < l->nlines; j++, nl++) {
				const struct prof_line *ln = &p->lines[l->line_start + j];
				const struct prof_function *f =
					ln->function ? &p->functions[ln->function - 1] : NULL;
				const char *name = f ? prof_str(p, f->name) : "[unknown]";
				const char *file = f ? prof_str(p, f->filename) : "";

				name_off[nl] = names.len;
				if (*file && ln->line > 0)
					strbuf_addf(&names, "%s (%s:%lld)", name, base_name(file),
						    (long long)ln->line);
				else
					strbuf_adds(&names, *name ? name : "[unknown]");
				strbuf_addc(&names, '\0');
				lines[nl] = (struct prof_line_in){
					.system_name = f ? prof_str(p, f->system_name) : NULL,
					.file = *file ? file : NULL,
					.line = ln->line,
				};
			}
		}
		/* Second pass: pointers into the finished buffer. */
		nl = 0;
		for (uint32_t k = 0; k < s->nlocs; k++) {
			const struct prof_location *l =
				&p->locations[p->sample_locs[s->loc_start + k] - 1];

			locs[k] = (struct prof_loc_in){
				.address = l->address, .lines = &lines[nl], .nlines = l->nlines};
			if (l->mapping) {
				const struct prof_mapping *m = &p->mappings[l->mapping - 1];

				maps[k] = mapping_in(p, m);
				locs[k].mapping = &maps[k];
			}
			for (uint32_t j = 0; j < l->nlines; j++, nl++)
				lines[nl].name = names.buf + name_off[nl];
		}
		in = (struct prof_sample_in){
			.pid = s->pid,
			.tid = s->tid,
			.comm = prof_str(p, s->comm),
			.thread = prof_str(p, s->thread),
			.locs = locs,
			.nlocs = s->nlocs,
			.count = s->count,
			.container = prof_str(p, s->container),
		};
		prof_profile__add_sample(out, &in);
	}
	strbuf_release(&names);
	free(maps);
	free(locs);
	free(lines);
	free(name_off);
	return out;
}

/* Loc/line capacity for one sample: kernel + user frames, inline chains (collector limits). */
#define FILTER_MAX_LOCS 512
#define FILTER_MAX_LINES 2048

bool prof_filter_container_ok(const char *v)
{
	size_t n = 0;

	if (!v)
		return false;
	for (; v[n]; n++)
		if (!((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'f')))
			return false;
	return n >= PROF_CONTAINER_PREFIX_MIN && n <= PROF_CONTAINER_ID_LEN;
}

bool prof_filter__match(const struct prof_filter *f, uint32_t pid, const char *comm,
			const char *container)
{
	if (!f)
		return true;
	if (f->pid && pid != f->pid)
		return false;
	if (f->comm && strcmp(f->comm, comm ? comm : ""))
		return false;
	/* A prefix match; container ids are fixed-length, so a prefix of one is unique enough. */
	if (f->container &&
	    (!container || !*container || strncmp(container, f->container, strlen(f->container))))
		return false;
	return true;
}

struct prof_profile *prof_profile__filter(const struct prof_profile *p, uint32_t pid,
					  const char *comm)
{
	const struct prof_filter f = {.pid = pid, .comm = comm};

	return prof_profile__filter_by(p, &f);
}

struct prof_profile *prof_profile__filter_by(const struct prof_profile *p,
					     const struct prof_filter *f)
{
	struct prof_profile *out = prof_profile__new(p->period_ns);
	struct prof_loc_in *locs = xmalloc(FILTER_MAX_LOCS * sizeof(*locs));
	struct prof_mapping_in *maps = xmalloc(FILTER_MAX_LOCS * sizeof(*maps));
	struct prof_line_in *lines = xmalloc(FILTER_MAX_LINES * sizeof(*lines));

	out->time_nanos = p->time_nanos;
	out->duration_nanos = p->duration_nanos;
	for (uint32_t i = 0; i < p->nsamples; i++) {
		const struct prof_sample *s = &p->samples[i];
		uint32_t nl = 0, n = s->nlocs < FILTER_MAX_LOCS ? s->nlocs : FILTER_MAX_LOCS;
		struct prof_sample_in in;

		if (!prof_filter__match(f, s->pid, prof_str(p, s->comm), prof_str(p, s->container)))
			continue;
		for (uint32_t k = 0; k < n; k++) {
			const struct prof_location *l =
				&p->locations[p->sample_locs[s->loc_start + k] - 1];
			uint32_t take = nl + l->nlines <= FILTER_MAX_LINES ? l->nlines : 0;

			for (uint32_t j = 0; j < take; j++) {
				const struct prof_line *ln = &p->lines[l->line_start + j];
				const struct prof_function *f =
					ln->function ? &p->functions[ln->function - 1] : NULL;

				lines[nl + j] = (struct prof_line_in){
					.name = f ? prof_str(p, f->name) : NULL,
					.system_name = f ? prof_str(p, f->system_name) : NULL,
					.file = f && f->filename ? prof_str(p, f->filename) : NULL,
					.line = ln->line,
				};
			}
			locs[k] = (struct prof_loc_in){
				.address = l->address, .lines = &lines[nl], .nlines = take};
			nl += take;
			if (l->mapping) {
				const struct prof_mapping *m = &p->mappings[l->mapping - 1];

				maps[k] = mapping_in(p, m);
				locs[k].mapping = &maps[k];
			}
		}
		in = (struct prof_sample_in){
			.pid = s->pid,
			.tid = s->tid,
			.comm = prof_str(p, s->comm),
			.thread = prof_str(p, s->thread),
			.locs = locs,
			.nlocs = n,
			.count = s->count,
			.container = prof_str(p, s->container),
		};
		prof_profile__add_sample(out, &in);
	}
	free(locs);
	free(maps);
	free(lines);
	return out;
}
