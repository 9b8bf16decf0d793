// SPDX-License-Identifier: MIT
#include "sampler.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "../common/util.h"
#include "profile.skel.h"

#define MIN_MAP_ENTRIES 4096
#define MAX_MAP_ENTRIES 65536
/* Entries moved per bpf_map_lookup_and_delete_batch() call. */
#define BATCH 256

struct prof_sampler {
	struct profile_bpf *skel;
	/*
	 * The tracepoints, then one link per CPU. A perf-event link owns its
	 * perf fd: bpf_link__destroy() closes it.
	 */
	struct bpf_link **links;
	int nlinks;
	int ncpus;
	struct ring_buffer *rb;
	prof_event_fn ev_fn;
	prof_snapshot_fn snap_fn;
	void *ev_ctx;
	bool cfi; /* the CFI maps are in use */
	uint32_t nrows;

	/* Drain scratch, reused between drains. */
	struct prof_sample_key *keys;
	uint64_t *vals;
	size_t kcap, vcap;
	struct prof_stack *svals; /* drained stacks, in map order */
	uint64_t *skeys; /* their keys (hashes) */
	size_t svcap, skcap;
	struct stack_ent *sidx; /* (hash, index) sorted by hash */
	size_t nstacks, sicap;
	int npossible;
	uint32_t cap_stacks, cap_counts;
};

struct stack_ent {
	uint64_t hash;
	size_t idx; /* into svals */
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	/* libbpf is chatty at debug level; keep its warnings, drop the rest
	 * unless asked for (-v -v). */
	if (level == LIBBPF_DEBUG && log_level < 3)
		return 0;
	if (level == LIBBPF_INFO && log_level < 2)
		return 0;
	fputs("bpfprof: ", stderr); /* libbpf's lines start with "libbpf: " */
	return vfprintf(stderr, fmt, ap);
}

int prof_check_privileges(char *why, size_t whylen)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
	uint64_t eff;
	bool sys_admin, bpf, perfmon;

	if (syscall(SYS_capget, &hdr, data)) {
		snprintf(why, whylen, "cannot read capabilities: %s", strerror(errno));
		return -errno;
	}
	eff = (uint64_t)data[1].effective << 32 | data[0].effective;
	sys_admin = eff & (1ULL << CAP_SYS_ADMIN);
	bpf = eff & (1ULL << 39 /* CAP_BPF */);
	perfmon = eff & (1ULL << 38 /* CAP_PERFMON */);
	if (sys_admin || (bpf && perfmon))
		return 0;
	if (!bpf && !perfmon)
		snprintf(why, whylen,
			 "needs root, or the capabilities CAP_BPF and CAP_PERFMON (missing both); "
			 "try sudo");
	else
		snprintf(why, whylen, "needs the capability %s (run as root, or grant it)",
			 bpf ? "CAP_PERFMON" : "CAP_BPF");
	return -EPERM;
}

/* Parses /sys/devices/system/cpu/online ("0-3,5"). Returns the count or -errno. */
static int online_cpus(bool **mask, int *nmask)
{
	struct strbuf sb = STRBUF_INIT;
	int err, n = 0, max = 0;
	char *p, *end;

	err = read_file("/sys/devices/system/cpu/online", &sb, 4096);
	if (err)
		goto out;
	for (p = sb.buf; *p && *p != '\n';) {
		long a = strtol(p, &end, 10), b = a;

		if (end == p || a < 0) {
			err = -EINVAL;
			goto out;
		}
		p = end;
		if (*p == '-') {
			b = strtol(p + 1, &end, 10);
			if (end == p + 1 || b < a) {
				err = -EINVAL;
				goto out;
			}
			p = end;
		}
		if (b >= max) {
			*mask = xrealloc(*mask, (b + 1) * sizeof(**mask));
			memset(*mask + max, 0, (b + 1 - max) * sizeof(**mask));
			max = b + 1;
		}
		for (long c = a; c <= b; c++, n++)
			(*mask)[c] = true;
		if (*p == ',')
			p++;
	}
	*nmask = max;
out:
	strbuf_release(&sb);
	return err ? err : n;
}

static int handle_rb_event(void *ctx, void *data, size_t size)
{
	struct prof_sampler *s = ctx;

	if (size < sizeof(struct prof_event) || !s->ev_fn)
		return 0;
	s->ev_fn(s->ev_ctx, data);
	return 0;
}

static int handle_rb_snapshot(void *ctx, void *data, size_t size)
{
	struct prof_sampler *s = ctx;

	if (size < sizeof(struct prof_snapshot) || !s->snap_fn)
		return 0;
	s->snap_fn(s->ev_ctx, data);
	return 0;
}

static int attach_cpus(struct prof_sampler *s, unsigned int freq)
{
	bool *mask = NULL;
	int nmask = 0, n, err = 0;

	n = online_cpus(&mask, &nmask);
	if (n < 0) {
		pr_err("cannot read the online CPUs: %s", strerror(-n));
		return n;
	}
	for (int cpu = 0; cpu < nmask; cpu++) {
		struct perf_event_attr attr = {
			.type = PERF_TYPE_SOFTWARE,
			.config = PERF_COUNT_SW_CPU_CLOCK,
			.size = sizeof(attr),
			.sample_freq = freq,
			.freq = 1,
		};
		struct bpf_link *link;
		int fd;

		if (!mask[cpu])
			continue;
		fd = syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			if (err == -ENODEV)
				continue; /* went offline since we read the mask */
			if (err == -EINVAL)
				pr_err("perf_event_open(cpu-clock, %u Hz) on CPU %d: %s (is -F "
				       "above "
				       "kernel.perf_event_max_sample_rate?)",
				       freq, cpu, strerror(-err));
			else
				pr_err("perf_event_open(cpu-clock) on CPU %d: %s", cpu,
				       strerror(-err));
			goto out;
		}
		link = bpf_program__attach_perf_event(s->skel->progs.prof_sample, fd);
		if (!link) {
			err = -errno;
			close(fd);
			pr_err("attaching the sampler to CPU %d: %s", cpu, strerror(-err));
			goto out;
		}
		s->ncpus++;
		s->links[s->nlinks++] = link;
	}
	err = 0;
out:
	free(mask);
	return err;
}

/*
 * Default entries per stacks/counts map: room for half the samples one drain
 * can hold when every one is distinct (CPUs x freq x drain interval / 2),
 * rounded up to a power of two, between 4096 and 65536. A stacks entry is
 * about 1.1 KB of preallocated kernel memory: 4.5 MB per set at the minimum.
 */
static uint32_t map_size(int ncpus, unsigned int freq, unsigned int drain_ms)
{
	uint64_t want = (uint64_t)ncpus * freq * (drain_ms ? drain_ms : 5000) / 1000 / 2;
	uint32_t n = MIN_MAP_ENTRIES;

	while (n < want && n < MAX_MAP_ENTRIES)
		n *= 2;
	return n;
}

struct prof_sampler *prof_sampler__open(const struct prof_sampler_opts *opts)
{
	struct prof_sampler *s;
	char why[256];
	int err, ncpu_possible;

	err = prof_check_privileges(why, sizeof(why));
	if (err) {
		pr_err("%s", why);
		errno = -err;
		return NULL;
	}
	libbpf_set_print(libbpf_log);

	s = xcalloc(1, sizeof(*s));
	ncpu_possible = libbpf_num_possible_cpus();
	if (ncpu_possible <= 0) {
		err = ncpu_possible ? ncpu_possible : -EINVAL;
		goto fail;
	}
	s->npossible = ncpu_possible;
	s->links = xcalloc(ncpu_possible + 2, sizeof(*s->links));

	s->skel = profile_bpf__open();
	if (!s->skel) {
		err = -errno;
		pr_err("opening the BPF object: %s", strerror(-err));
		goto fail;
	}
	s->skel->rodata->filter_tgid = opts->pid > 0 ? opts->pid : 0;
	s->skel->rodata->kernel_stacks = opts->kernel_stacks;
	s->skel->rodata->cfi_unwind = opts->cfi_unwind;
	s->nrows = opts->cfi_unwind
			   ? (opts->unwind_rows ? opts->unwind_rows : PROF_DEFAULT_UNWIND_ROWS)
			   : 1;
	bpf_map__set_max_entries(s->skel->maps.unwind_rows, s->nrows);
	if (!opts->cfi_unwind) {
		/* Frame-pointer mode: the CFI maps stay tiny. */
		bpf_map__set_max_entries(s->skel->maps.unwind_tables, 1);
		bpf_map__set_max_entries(s->skel->maps.proc_maps, 1);
		bpf_map__set_max_entries(s->skel->maps.snapshots, 4096);
	}
	{
		uint32_t def = map_size(ncpu_possible, opts->freq, opts->drain_ms);
		uint32_t ms = opts->max_stacks ? opts->max_stacks : def;
		uint32_t mc = opts->max_counts ? opts->max_counts : def;

		s->cap_stacks = ms;
		s->cap_counts = mc;
		bpf_map__set_max_entries(s->skel->maps.stacks0, ms);
		bpf_map__set_max_entries(s->skel->maps.stacks1, ms);
		bpf_map__set_max_entries(s->skel->maps.counts0, mc);
		bpf_map__set_max_entries(s->skel->maps.counts1, mc);
	}
	err = profile_bpf__load(s->skel);
	if (err == -ENOMEM || err == -E2BIG) {
		pr_err("loading the BPF programs: %s: the kernel could not allocate the maps "
		       "(lower --max-counts/--max-stacks)",
		       strerror(-err));
		goto fail;
	} else if (err) {
		pr_err("loading the BPF programs: %s (the kernel needs BTF and BPF support; the "
		       "verifier's log is above)",
		       strerror(-err));
		goto fail;
	}
	/* Tracepoints first, so that no exec between the two is missed. */
	s->links[s->nlinks] = bpf_program__attach(s->skel->progs.prof_exec);
	if (!s->links[s->nlinks]) {
		err = -errno;
		pr_err("attaching to sched_process_exec: %s", strerror(-err));
		goto fail;
	}
	s->nlinks++;
	s->links[s->nlinks] = bpf_program__attach(s->skel->progs.prof_exit);
	if (!s->links[s->nlinks]) {
		err = -errno;
		pr_err("attaching to sched_process_exit: %s", strerror(-err));
		goto fail;
	}
	s->nlinks++;

	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), handle_rb_event, s, NULL);
	if (!s->rb) {
		err = -errno;
		pr_err("opening the event ring buffer: %s", strerror(-err));
		goto fail;
	}
	if (opts->cfi_unwind) {
		err = ring_buffer__add(s->rb, bpf_map__fd(s->skel->maps.snapshots),
				       handle_rb_snapshot, s);
		if (err) {
			pr_err("opening the snapshot ring buffer: %s", strerror(-err));
			goto fail;
		}
		s->cfi = true;
	}
	err = attach_cpus(s, opts->freq);
	if (err)
		goto fail;
	return s;
fail:
	prof_sampler__free(s);
	errno = -err;
	return NULL;
}

void prof_sampler__free(struct prof_sampler *s)
{
	if (!s)
		return;
	for (int i = s->nlinks - 1; i >= 0; i--)
		bpf_link__destroy(s->links[i]);
	ring_buffer__free(s->rb);
	profile_bpf__destroy(s->skel);
	free(s->links);
	free(s->keys);
	free(s->vals);
	free(s->svals);
	free(s->skeys);
	free(s->sidx);
	free(s);
}

int prof_sampler__ncpus(const struct prof_sampler *s)
{
	return s->ncpus;
}

int prof_sampler__events_fd(const struct prof_sampler *s)
{
	return ring_buffer__epoll_fd(s->rb);
}

int prof_sampler__consume_events(struct prof_sampler *s, prof_event_fn fn, prof_snapshot_fn snap_fn,
				 void *ctx)
{
	int n;

	s->ev_fn = fn;
	s->snap_fn = snap_fn;
	s->ev_ctx = ctx;
	n = ring_buffer__consume(s->rb);
	s->ev_fn = NULL;
	s->snap_fn = NULL;
	return n;
}

bool prof_sampler__unwind_maps(const struct prof_sampler *s, struct prof_unwind_maps *out)
{
	if (!s->cfi)
		return false;
	out->rows_fd = bpf_map__fd(s->skel->maps.unwind_rows);
	out->nrows = s->nrows;
	out->tables_fd = bpf_map__fd(s->skel->maps.unwind_tables);
	out->ntables = bpf_map__max_entries(s->skel->maps.unwind_tables);
	out->proc_maps_fd = bpf_map__fd(s->skel->maps.proc_maps);
	return true;
}

int prof_sampler__unwind_stops(struct prof_sampler *s, uint64_t out[PROF_UW__COUNT])
{
	int fd = bpf_map__fd(s->skel->maps.unwind_stops);
	uint64_t *pcpu = xcalloc(s->npossible, sizeof(*pcpu));
	int err = 0;

	for (uint32_t i = 0; i < PROF_UW__COUNT; i++) {
		out[i] = 0;
		if (!err)
			err = bpf_map_lookup_elem(fd, &i, pcpu) ? -errno : 0;
		for (int c = 0; !err && c < s->npossible; c++)
			out[i] += pcpu[c];
	}
	free(pcpu);
	return err;
}

/*
 * Moves every entry of @fd into (*keys, *vals) and deletes it from the map.
 * Returns the number of entries or -errno.
 */
static long drain_map(int fd, void **keys, size_t *kcap, size_t ksize, void **vals, size_t *vcap,
		      size_t vsize)
{
	uint32_t in_batch, out_batch;
	bool first = true;
	size_t n = 0;

	for (;;) {
		uint32_t count = BATCH;
		int err;

		xgrow(keys, kcap, n + BATCH, ksize);
		xgrow(vals, vcap, n + BATCH, vsize);
		err = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &in_batch, &out_batch,
						      (char *)*keys + n * ksize,
						      (char *)*vals + n * vsize, &count, NULL);
		if (err && err != -ENOENT)
			return err;
		n += count;
		if (err == -ENOENT)
			break;
		in_batch = out_batch;
		first = false;
	}
	return n;
}

static int cmp_stack_ent(const void *a, const void *b)
{
	uint64_t x = ((const struct stack_ent *)a)->hash, y = ((const struct stack_ent *)b)->hash;

	return x < y ? -1 : x > y;
}

static const struct prof_stack *find_stack(const struct prof_sampler *s, uint64_t hash)
{
	size_t lo = 0, hi = s->nstacks;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->sidx[mid].hash == hash)
			return &s->svals[s->sidx[mid].idx];
		if (s->sidx[mid].hash < hash)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int prof_sampler__drain(struct prof_sampler *s, prof_sample_fn fn, void *ctx, uint64_t *flip_ns)
{
	uint32_t old = s->skel->bss->active_set;
	struct timespec settle = {0, 2 * 1000 * 1000};
	int counts_fd, stacks_fd;
	long n, ns;

	__atomic_store_n(&s->skel->bss->active_set, !old, __ATOMIC_SEQ_CST);
	if (flip_ns)
		*flip_ns = now_mono_ns();
	/*
	 * perf_event programs run in (soft)irq context and finish within
	 * microseconds; after this pause none still writes to the old set.
	 */
	nanosleep(&settle, NULL);

	counts_fd = bpf_map__fd(old ? s->skel->maps.counts1 : s->skel->maps.counts0);
	stacks_fd = bpf_map__fd(old ? s->skel->maps.stacks1 : s->skel->maps.stacks0);

	n = drain_map(counts_fd, (void **)&s->keys, &s->kcap, sizeof(*s->keys), (void **)&s->vals,
		      &s->vcap, sizeof(*s->vals));
	if (n < 0) {
		pr_warn("draining the counts map: %s", strerror((int)-n));
		return (int)n;
	}
	ns = drain_map(stacks_fd, (void **)&s->skeys, &s->skcap, sizeof(uint64_t),
		       (void **)&s->svals, &s->svcap, sizeof(struct prof_stack));
	if (ns < 0) {
		pr_warn("draining the stacks map: %s", strerror((int)-ns));
		return (int)ns;
	}
	xgrow((void **)&s->sidx, &s->sicap, ns, sizeof(*s->sidx));
	for (long i = 0; i < ns; i++) {
		s->sidx[i].hash = s->skeys[i];
		s->sidx[i].idx = i;
	}
	s->nstacks = ns;
	if (ns > 1)
		qsort(s->sidx, ns, sizeof(*s->sidx), cmp_stack_ent);

	for (long i = 0; i < n; i++) {
		const struct prof_sample_key *k = &s->keys[i];
		const struct prof_stack *ks = k->kern_stack ? find_stack(s, k->kern_stack) : NULL;
		const struct prof_stack *us = k->user_stack ? find_stack(s, k->user_stack) : NULL;
		struct prof_raw_sample rs = {
			.key = k,
			.count = s->vals[i],
			.kstack = ks ? ks->frames : NULL,
			.nkstack = ks ? ks->nframes : 0,
			.ustack = us ? us->frames : NULL,
			.nustack = us ? us->nframes : 0,
			.ustack_full = us && (us->flags & PROF_STACK_FULL),
			.kstack_lost = (k->kern_stack && !ks) || k->kern_err,
			.ustack_lost = (k->user_stack && !us) || k->user_err,
		};

		if (rs.nkstack > PROF_MAX_STACK_DEPTH)
			rs.nkstack = PROF_MAX_STACK_DEPTH;
		if (rs.nustack > PROF_MAX_STACK_DEPTH)
			rs.nustack = PROF_MAX_STACK_DEPTH;
		fn(ctx, &rs);
	}
	return (int)n;
}

void prof_sampler__capacity(const struct prof_sampler *s, uint32_t *stacks, uint32_t *counts)
{
	*stacks = s->cap_stacks;
	*counts = s->cap_counts;
}

uint32_t prof_sampler__last_stacks(const struct prof_sampler *s)
{
	return (uint32_t)s->nstacks;
}

int prof_sampler__stats(struct prof_sampler *s, uint64_t out[PROF_STAT__COUNT])
{
	int fd = bpf_map__fd(s->skel->maps.stats);
	/* Per call: several HTTP threads may ask at once. */
	uint64_t *pcpu = xcalloc(s->npossible, sizeof(*pcpu));
	int err = 0;

	for (uint32_t i = 0; i < PROF_STAT__COUNT; i++) {
		out[i] = 0;
		if (!err)
			err = bpf_map_lookup_elem(fd, &i, pcpu);
		for (int c = 0; !err && c < s->npossible; c++)
			out[i] += pcpu[c];
	}
	free(pcpu);
	return err;
}
