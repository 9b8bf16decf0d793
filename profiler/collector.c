// SPDX-License-Identifier: MIT
#include "collector.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../common/util.h"
#include "sampler.h"

#define DEFAULT_FREQ 99
#define DEFAULT_DRAIN_MS 5000
/* Frames one sample can turn into: kernel + user + markers. */
#define MAX_FRAMES (2 * PROF_MAX_STACK_DEPTH + 4)
/* Kernel addresses remembered as missing, so that only new ones trigger a reload. */
#define KMISSED_SLOTS 4096

/* Lines one sample's locations can hold in all (inlined frames included). */
#define MAX_XLINES (4 * MAX_FRAMES)
/* Inlined frames kept per location; deeper chains keep the innermost ones. */
#define MAX_INLINE 16
/* Room for a synthesized "module+0xoffset" name. */
#define SYNTH_LEN 96

/* Snapshots kept for later (each up to 20 KiB); beyond, finished at once. */
#define MAX_DEFERRED 128

/* Kernel addresses start here on x86-64 and arm64 (48-bit VA). */
#define KERNEL_START 0xffff800000000000ULL

struct prof_window {
	uint64_t start_ns; /* CLOCK_MONOTONIC */
	uint64_t end_ns;
	uint64_t first_ns; /* start of the first batch merged, 0 = none yet */
	int64_t first_wall; /* wall clock of first_ns */
	uint64_t last_ns; /* end of the last batch merged */
	bool done;
	struct prof_profile *profile;
	struct prof_window *next;
};

struct prof_collector {
	struct prof_sampler *sampler;
	struct prof_procs *procs;
	struct sym_dsos *dsos;
	struct sym_kallsyms *ksyms;
	uint64_t ksyms_loaded_ns; /* when ksyms was read */
	bool ksyms_missed; /* a kernel address missed that had not missed before */
	/* Kernel addresses that had no symbol (open addressing, 0 = empty slot). */
	uint64_t kmissed[KMISSED_SLOTS];
	uint32_t nkmissed;
	struct sym_demangler *demangler;
	struct sym_vdso *vdso; /* this kernel's vDSO symbols, NULL when unreadable */
	struct prof_unwinder *unwinder; /* CFI tables; NULL in frame-pointer mode */
	/* Snapshot samples finished in user space, counted at the next drain. */
	struct pending_sample **pending;
	size_t npending, cappending;
	/* Snapshots waiting to be finished (see on_snapshot). */
	struct prof_snapshot *deferred[MAX_DEFERRED];
	size_t ndeferred;
	/*
	 * Address spaces whose mappings are still to be written to the BPF
	 * maps: done between drains in slices (building tables for every
	 * library of a busy machine takes a while at start), so that cuts are
	 * served on time. Samples in between come as snapshots.
	 */
	struct sync_req *syncq;
	size_t nsyncq, capsyncq;
	char *kernel_build_id;
	struct prof_collector_opts opts;
	int64_t period_ns;

	pthread_t thread;
	bool thread_started;
	int epfd;
	int wakefd; /* eventfd: wakes the thread (cut requests, stop) */

	/* Shared with window users, under lock. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct prof_window *windows;
	bool cut_requested;
	bool stopping; /* no new windows; thread finishes after the last drain */
	bool stopped; /* thread has done its last drain */
	volatile sig_atomic_t stop_async;
	struct prof_collector_stats stats; /* published copy of ts, under lock */

	/* The current interval (opts.interval_ms), thread-private. */
	struct prof_profile *ival;
	uint64_t ival_end_ns; /* CLOCK_MONOTONIC end of the current interval */
	uint64_t ival_start_ns; /* start of its first batch */
	int64_t ival_start_wall;

	/* Thread-private drain state. */
	struct prof_collector_stats ts; /* counters, published into stats after each drain */
	uint64_t last_flip_ns;
	int64_t last_flip_wall;
	uint64_t trimmed_ns, trimmed_free; /* the last malloc_trim: when, and the free heap then */
	struct prof_profile *batch;
	struct prof_loc_in locs[MAX_FRAMES];
	struct prof_line_in lines[MAX_FRAMES];
	/* Inline chains (several lines per location), reset for every sample. */
	struct prof_line_in xlines[MAX_XLINES];
	uint32_t nxlines;
	struct sym_frame sfr[MAX_INLINE];
	struct prof_mapping_in maps[MAX_FRAMES];
	char synth[MAX_FRAMES][SYNTH_LEN];
};

struct sync_req {
	uint32_t pid, aspace;
};

/* A sample from a snapshot, kept for the next drain. */
struct pending_sample {
	struct prof_sample_key key;
	uint32_t nk, nu;
	bool truncated;
	__u64 frames[]; /* nk kernel frames, then nu user frames */
};

/* ---- symbolization of one drained entry ---------------------------------- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/*
 * "[user stack lost: EFAULT]": why a stack is missing, from the error the
 * BPF side recorded (prof_sample_key.kern_err/user_err). Written into the
 * frame's synth buffer.
 */
static const char *lost_name(struct prof_collector *c, uint32_t n, const char *what, int32_t err,
			     bool missing_in_map)
{
	const char *why;

	if (missing_in_map)
		why = "not in stacks map";
	else if (err == -PROF_ERR_STACKS_FULL)
		why = "stacks map full";
	else if (err == -2)
		why = "empty";
	else if (err < 0 && strerrorname_np(-err))
		why = strerrorname_np(-err);
	else
		why = "unknown";
	if (n >= MAX_FRAMES)
		return what;
	snprintf(c->synth[n], SYNTH_LEN, "[%s stack lost: %s]", what, why);
	return c->synth[n];
}

static uint32_t add_marker(struct prof_collector *c, uint32_t n, const char *name)
{
	if (n >= MAX_FRAMES)
		return n;
	c->lines[n] = (struct prof_line_in){.name = name};
	c->locs[n] = (struct prof_loc_in){.lines = &c->lines[n], .nlines = 1};
	return n + 1;
}

/*
 * Remembers a kernel address without a symbol. Only an address not seen
 * missing before asks for a kallsyms reload: some addresses are in no
 * table at all, and reloading for them every minute fragmented the heap
 * (3 MB per reload) for nothing. Once the set is full, nothing more is
 * remembered and nothing triggers reloads.
 */
static void note_kernel_miss(struct prof_collector *c, uint64_t addr)
{
	uint32_t i = hash_u64(addr, 0x51ed27) & (KMISSED_SLOTS - 1);

	if (!addr || c->nkmissed >= KMISSED_SLOTS / 2)
		return;
	while (c->kmissed[i]) {
		if (c->kmissed[i] == addr)
			return;
		i = (i + 1) & (KMISSED_SLOTS - 1);
	}
	c->kmissed[i] = addr;
	c->nkmissed++;
	c->ksyms_missed = true;
}

static uint32_t add_kernel_frames(struct prof_collector *c, uint32_t n,
				  const struct prof_raw_sample *rs)
{
	for (uint32_t i = 0; i < rs->nkstack && n < MAX_FRAMES; i++, n++) {
		uint64_t addr = rs->kstack[i];
		/* Return addresses point after the call: look up the call itself. */
		const struct sym_ksym *k =
			c->ksyms ? sym_kallsyms__find(c->ksyms, i ? addr - 1 : addr) : NULL;

		c->maps[n] = (struct prof_mapping_in){
			.start = KERNEL_START,
			.limit = UINT64_MAX,
			.file = "[kernel.kallsyms]",
			.build_id = c->kernel_build_id,
			.has_functions = k != NULL,
		};
		c->lines[n] = (struct prof_line_in){.name = k ? k->name : "[unknown]"};
		c->locs[n] = (struct prof_loc_in){
			.address = addr,
			.mapping = &c->maps[n],
			.lines = &c->lines[n],
			.nlines = 1,
		};
		c->ts.frames++;
		if (!k) {
			c->ts.frames_unknown++;
			note_kernel_miss(c, addr);
		}
	}
	return n;
}

/* x86-64 DWARF register numbers */
#define DWARF_REG_RSP 7

/*
 * The caller a frame-pointer walk skipped, or 0. When the sampled function
 * has not set up its frame yet (its CFA is rsp-based at the sampled
 * address: a leaf that uses no stack, a function's first instructions, a
 * libc syscall wrapper), rbp still points at its caller's frame, so the
 * walk's second entry is the caller's return address and the caller itself
 * is missing. Its return address was captured from the top of the stack
 * (prof_sample_key.leaf_ra); the CFI decides whether it belongs there.
 */
static uint64_t skipped_caller(struct prof_collector *c, struct prof_aspace *as,
			       const struct prof_raw_sample *rs)
{
	uint64_t ip = rs->ustack[0], ra, vaddr;
	const struct prof_vma *v = prof_procs__find_vma(c->procs, as, ip);
	int64_t off;
	int reg;

	if (!v || !v->dso)
		return 0;
	if (sym_dso__offset_to_vaddr(v->dso, ip - v->start + v->pgoff, &vaddr) ||
	    sym_dso__cfa(v->dso, vaddr, &reg, &off) || reg != DWARF_REG_RSP)
		return 0;
	/* CFA = rsp + 8: the return address is at [rsp]; rsp + 16: at [rsp + 8]. */
	if (off == 8)
		ra = rs->key->leaf_ra[0];
	else if (off == 16)
		ra = rs->key->leaf_ra[1];
	else
		return 0;
	if (!ra || (rs->nustack > 1 && rs->ustack[1] == ra))
		return 0;
	if (!prof_procs__find_vma(c->procs, as, ra - 1))
		return 0;
	c->ts.leaf_fixups += rs->count;
	return ra;
}

/*
 * Location @n from DWARF: the inline chain at @look, innermost first, each
 * with file and line. False when the file has no DWARF for it (the caller
 * falls back to the symbol table) or the sample's line pool is full.
 */
static bool add_source_lines(struct prof_collector *c, uint32_t n, const struct prof_vma *v,
			     uint64_t look, uint64_t addr)
{
	struct prof_mapping_in *m = &c->maps[n];
	struct prof_line_in *ln = &c->xlines[c->nxlines];
	int nf = sym_dso__frames(v->dso, look - v->start + v->pgoff, c->sfr, MAX_INLINE);

	if (nf <= 0 || c->nxlines + nf > MAX_XLINES)
		return false;
	for (int j = 0; j < nf; j++) {
		const char *raw = c->sfr[j].function;

		if (!raw) {
			struct sym_result r;

			/* No DWARF name (rare): the symbol table's, for the physical frame. */
			raw = j == nf - 1 && sym_dso__resolve(v->dso, look - v->start + v->pgoff,
							      &r, NULL) == 0
				      ? r.name
				      : "[unknown]";
		}
		ln[j] = (struct prof_line_in){
			.name = sym_demangle(c->demangler, raw),
			.system_name = raw,
			.file = c->sfr[j].file,
			.line = c->sfr[j].line,
		};
	}
	c->nxlines += nf;
	/*
	 * The file's DWARF was used: the mapping has file names and lines even
	 * where one location has none (crt1.o's _start, which CFI unwinding
	 * reaches in every stack, has no DWARF in any build).
	 */
	m->has_functions = true;
	m->has_filenames = true;
	m->has_line_numbers = true;
	m->has_inline_frames = true;
	c->locs[n] = (struct prof_loc_in){
		.address = addr, .mapping = m, .lines = ln, .nlines = (uint32_t)nf};
	c->ts.frames_dwarf++;
	return true;
}

/*
 * Loads or refreshes the JIT perf map of @as, at most once per drain, and
 * before any frame of a sample is resolved: a refresh invalidates the names
 * earlier lookups returned.
 */
static void sync_perfmap(struct prof_collector *c, struct prof_aspace *as)
{
	uint64_t drain = c->ts.drains + 1;

	if (as->perfmap_drain == drain || as->dead_ns)
		return;
	as->perfmap_drain = drain;
	if (!as->perfmap)
		as->perfmap = sym_perfmap__load_pid(as->pid);
	else
		sym_perfmap__refresh(as->perfmap);
}

static uint32_t add_user_frames(struct prof_collector *c, uint32_t n,
				const struct prof_raw_sample *rs)
{
	struct prof_aspace *as = prof_procs__get(c->procs, rs->key->pid, rs->key->aspace);
	uint64_t addrs[PROF_MAX_STACK_DEPTH + 1];
	/*
	 * Each frame's mapping, looked up once. A re-read of the maps during the
	 * lookups retires the old array until the drain ends, so these stay valid.
	 */
	const struct prof_vma *vmas[PROF_MAX_STACK_DEPTH + 1];
	/* Frames whose address is not a return address: looked up as is. */
	bool exact[PROF_MAX_STACK_DEPTH + 1];
	uint32_t na = 0;
	bool anon = false;

	for (uint32_t i = 0; i < rs->nustack; i++) {
		exact[na] = i == 0 || (rs->ustack[i] & PROF_FRAME_EXACT);
		addrs[na++] = rs->ustack[i] & ~PROF_FRAME_EXACT;
		if (i == 0 && (rs->key->leaf_ra[0] || rs->key->leaf_ra[1])) {
			uint64_t caller = skipped_caller(c, as, rs);

			if (caller) {
				exact[na] = false;
				addrs[na++] = caller;
			}
		}
	}
	for (uint32_t i = 0; i < na; i++) {
		vmas[i] = prof_procs__find_vma(c->procs, as, exact[i] ? addrs[i] : addrs[i] - 1);
		anon = anon || (vmas[i] && vmas[i]->kind == PROF_VMA_ANON);
	}
	/* JIT code: its perf map must be current before any name is taken from it. */
	if (anon)
		sync_perfmap(c, as);
	for (uint32_t i = 0; i < na && n < MAX_FRAMES; i++, n++) {
		uint64_t addr = addrs[i];
		uint64_t look = exact[i] ? addr : addr - 1;
		const struct prof_vma *v = vmas[i];
		struct prof_mapping_in *m = &c->maps[n];
		const char *name = NULL;

		c->ts.frames++;
		if (!v) {
			c->lines[n] = (struct prof_line_in){.name = "[unknown]"};
			c->locs[n] = (struct prof_loc_in){
				.address = addr, .lines = &c->lines[n], .nlines = 1};
			c->ts.frames_unknown++;
			continue;
		}
		*m = (struct prof_mapping_in){
			.start = v->start,
			.limit = v->end,
			.offset = v->pgoff,
			.file = v->kind == PROF_VMA_ANON ? "[anon]" : v->path,
			.build_id = v->dso ? sym_dso__build_id(v->dso) : NULL,
		};
		if (v->dso && add_source_lines(c, n, v, look, addr))
			continue;
		if (v->dso) {
			struct sym_result r;

			if (sym_dso__resolve(v->dso, look - v->start + v->pgoff, &r, NULL) == 0)
				name = r.name;
		}
		/* Code without a file: a JIT's perf map, or the vDSO. */
		if (!name && v->kind == PROF_VMA_ANON && as->perfmap)
			name = sym_perfmap__lookup(as->perfmap, look, NULL);
		/* Only our own image: a 32-bit process maps another, of another size. */
		if (!name && v->kind == PROF_VMA_VDSO && c->vdso &&
		    v->end - v->start == ((sym_vdso__size(c->vdso) + 4095) & ~4095ULL))
			name = sym_vdso__resolve(c->vdso, look - v->start, NULL);
		if (name) {
			m->has_functions = true;
		} else {
			c->ts.frames_unknown++;
			if (v->kind == PROF_VMA_ANON) {
				name = "[unknown]";
			} else {
				snprintf(c->synth[n], SYNTH_LEN, "%s+0x%llx", base_name(v->path),
					 (unsigned long long)(look - v->start + v->pgoff));
				name = c->synth[n];
			}
		}
		/* Show C++/Rust names demangled; pprof keeps the raw one as system_name. */
		c->lines[n] = (struct prof_line_in){
			.name = sym_demangle(c->demangler, name),
			.system_name = name,
		};
		c->locs[n] = (struct prof_loc_in){
			.address = addr, .mapping = m, .lines = &c->lines[n], .nlines = 1};
	}
	return n;
}

static void on_sample(void *ctx, const struct prof_raw_sample *rs)
{
	struct prof_collector *c = ctx;
	const struct prof_sample_key *k = rs->key;
	char comm[PROF_COMM_LEN + 1], thread[PROF_COMM_LEN + 1];
	const struct prof_aspace *as;
	struct prof_sample_in s;
	uint32_t n = 0;

	memcpy(comm, k->comm, PROF_COMM_LEN);
	comm[PROF_COMM_LEN] = '\0';
	memcpy(thread, k->thread, PROF_COMM_LEN);
	thread[PROF_COMM_LEN] = '\0';

	c->nxlines = 0;
	/* Leaf first: kernel frames, then user frames, then markers at the root. */
	n = add_kernel_frames(c, n, rs);
	if (rs->kstack_lost) {
		n = add_marker(
			c, n,
			lost_name(c, n, "kernel", k->kern_err, k->kern_stack && !rs->nkstack));
		c->ts.kstacks_lost += rs->count;
	}
	if (rs->nustack)
		n = add_user_frames(c, n, rs);
	if (rs->ustack_lost) {
		n = add_marker(c, n,
			       lost_name(c, n, "user", k->user_err, k->user_stack && !rs->nustack));
		c->ts.ustacks_lost += rs->count;
	}
	if (rs->ustack_full) {
		n = add_marker(c, n, "[truncated]");
		c->ts.ustacks_truncated += rs->count;
	}
	if (n == 0)
		n = add_marker(c, n, "[no stack]");
	/* Tracked by now if it has user frames; kernel threads are in no container. */
	as = prof_procs__find(c->procs, k->pid, k->aspace);

	s = (struct prof_sample_in){
		.pid = k->pid,
		.tid = k->tid,
		.comm = comm[0] ? comm : thread,
		.thread = thread,
		.locs = c->locs,
		.nlocs = n,
		.count = rs->count,
		.container = as ? as->container : NULL,
	};
	prof_profile__add_sample(c->batch, &s);
	c->ts.samples += rs->count;
}

/* ---- the drain loop ------------------------------------------------------ */

static void on_event(void *ctx, const struct prof_event *e)
{
	struct prof_collector *c = ctx;

	prof_procs__event(c->procs, e);
	if (!c->unwinder)
		return;
	if (e->type == PROF_EV_EXIT) {
		prof_unwinder__exit(c->unwinder, e->pid, e->aspace);
		return;
	}
	if (c->nsyncq == c->capsyncq) {
		c->capsyncq = c->capsyncq ? c->capsyncq * 2 : 64;
		c->syncq = xrealloc(c->syncq, c->capsyncq * sizeof(*c->syncq));
	}
	c->syncq[c->nsyncq++] = (struct sync_req){e->pid, e->aspace};
}

static int next_timeout_ms(struct prof_collector *c, uint64_t now);
static void finish_deferred(struct prof_collector *c, uint64_t deadline_ns);

/* Works through the sync queue for at most 20 ms, or until a drain is due. */
static void run_syncs(struct prof_collector *c)
{
	uint64_t start = now_mono_ns();
	size_t i = 0;

	finish_deferred(c, start + 20000000ULL);
	while (i < c->nsyncq) {
		struct sync_req r = c->syncq[i++];
		/* Not re-created if it was collected meanwhile: it is dead. */
		const struct prof_aspace *as = prof_procs__find(c->procs, r.pid, r.aspace);

		if (as)
			prof_unwinder__sync(c->unwinder, as);
		if (now_mono_ns() - start > 20000000ULL || next_timeout_ms(c, now_mono_ns()) == 0)
			break;
	}
	memmove(c->syncq, c->syncq + i, (c->nsyncq - i) * sizeof(*c->syncq));
	c->nsyncq -= i;
}

/*
 * A sample the kernel could not unwind yet: finish it with the same rows
 * now (reading the maps and loading tables as needed), and have the
 * process's mappings in the BPF maps for its next samples.
 */
static void finish_snapshot(struct prof_collector *c, const struct prof_snapshot *snap)
{
	struct prof_aspace *as;
	struct pending_sample *ps;
	uint64_t ufr[PROF_MAX_STACK_DEPTH] = {0};
	uint32_t nu = 0, nk;
	enum prof_uw_stop why;

	as = prof_procs__get(c->procs, snap->key.pid, snap->key.aspace);
	why = prof_unwinder__finish(c->unwinder, c->procs, as, snap, ufr, &nu);
	prof_unwinder__sync(c->unwinder, as);
	nk = snap->nkern < PROF_SNAP_KSTACK ? snap->nkern : PROF_SNAP_KSTACK;
	ps = xmalloc(sizeof(*ps) + (nk + nu) * sizeof(__u64));
	ps->key = snap->key;
	ps->nk = nk;
	ps->nu = nu;
	ps->truncated = why == PROF_UW_TRUNCATED;
	memcpy(ps->frames, snap->kern, nk * sizeof(__u64));
	memcpy(ps->frames + nk, ufr, nu * sizeof(__u64));
	if (c->npending == c->cappending) {
		c->cappending = c->cappending ? c->cappending * 2 : 64;
		c->pending = xrealloc(c->pending, c->cappending * sizeof(*c->pending));
	}
	c->pending[c->npending++] = ps;
}

/* Finishes deferred snapshots, all of them, or until @deadline_ns (CLOCK_MONOTONIC). */
static void finish_deferred(struct prof_collector *c, uint64_t deadline_ns)
{
	size_t i = 0;

	while (i < c->ndeferred) {
		finish_snapshot(c, c->deferred[i]);
		free(c->deferred[i++]);
		if (deadline_ns && now_mono_ns() > deadline_ns)
			break;
	}
	memmove(c->deferred, c->deferred + i, (c->ndeferred - i) * sizeof(*c->deferred));
	c->ndeferred -= i;
}

/*
 * Finishing a snapshot may build unwind tables (libc: 7 ms): that waits
 * for the slices between drains, or for the drain after its flip, so that
 * the flip a window waits for is not late. Only the part of the record in
 * use is copied; beyond MAX_DEFERRED they are finished at once.
 */
static void on_snapshot(void *ctx, const struct prof_snapshot *snap)
{
	struct prof_collector *c = ctx;
	size_t len = offsetof(struct prof_snapshot, stack) +
		     (snap->stack_len < PROF_SNAP_STACK ? snap->stack_len : PROF_SNAP_STACK);
	struct prof_snapshot *copy;

	if (!c->unwinder)
		return;
	if (c->ndeferred == MAX_DEFERRED) {
		finish_snapshot(c, snap);
		return;
	}
	/* The stack words are read at stack[sp - stack_base ...], within len. */
	copy = xmalloc(len);
	memcpy(copy, snap, len);
	c->deferred[c->ndeferred++] = copy;
}

/* Counts the snapshot samples into the batch being drained. */
static void feed_pending(struct prof_collector *c)
{
	if (c->npending > c->ts.snapshots_pending_max)
		c->ts.snapshots_pending_max = c->npending;
	for (size_t i = 0; i < c->npending; i++) {
		struct pending_sample *ps = c->pending[i];
		struct prof_raw_sample rs = {
			.key = &ps->key,
			.count = 1,
			.kstack = ps->nk ? ps->frames : NULL,
			.nkstack = ps->nk,
			.ustack = ps->nu ? ps->frames + ps->nk : NULL,
			.nustack = ps->nu,
			.ustack_full = ps->truncated,
			.kstack_lost = ps->key.kern_err != 0,
		};

		on_sample(c, &rs);
		free(ps);
	}
	c->npending = 0;
}

static void finish_window(struct prof_window *w, uint64_t flip_ns)
{
	w->done = true;
	if (w->first_ns) {
		w->profile->time_nanos = w->first_wall;
		w->profile->duration_nanos = w->last_ns - w->first_ns;
	} else {
		w->profile->time_nanos = now_wall_ns() - (now_mono_ns() - w->start_ns);
		w->profile->duration_nanos = flip_ns > w->start_ns ? flip_ns - w->start_ns : 0;
	}
}

/*
 * Publishes the thread's counters for prof_collector__stats(). The tracker
 * and the symbolizer belong to this thread; other threads only ever see
 * these copies.
 */
static void publish_stats(struct prof_collector *c)
{
	c->ts.kallsyms_symbols = c->ksyms ? sym_kallsyms__count(c->ksyms) : 0;
	prof_procs__stats(c->procs, &c->ts.procs);
	sym_dsos__stats(c->dsos, &c->ts.sym);
	if (c->unwinder) {
		prof_unwinder__stats(c->unwinder, &c->ts.unwind);
		prof_sampler__unwind_stops(c->sampler, c->ts.unwind_stops);
	}
	pthread_mutex_lock(&c->lock);
	c->stats = c->ts;
	pthread_mutex_unlock(&c->lock);
}

/* The next interval boundary after @mono_ns: a wall-clock multiple of the interval. */
static uint64_t next_boundary(const struct prof_collector *c, uint64_t mono_ns)
{
	uint64_t iv = c->opts.interval_ms * 1000000ULL;
	uint64_t wall = now_wall_ns() - (now_mono_ns() - mono_ns);

	return mono_ns + (iv - wall % iv);
}

/*
 * Adds the drained batch (covering [prev, flip]) to the current interval;
 * hands the interval out when the flip reaches its end (or at the last
 * drain).
 */
static void feed_interval(struct prof_collector *c, uint64_t prev, int64_t prev_wall,
			  uint64_t flip_ns, bool final)
{
	if (!c->opts.interval_fn)
		return;
	if (c->batch->nsamples) {
		if (!c->ival) {
			c->ival = prof_profile__new(c->period_ns);
			c->ival_start_ns = prev;
			c->ival_start_wall = prev_wall;
		}
		prof_profile__merge(c->ival, c->batch);
	}
	if (flip_ns < c->ival_end_ns && !final)
		return;
	if (c->ival) {
		c->ival->time_nanos = c->ival_start_wall;
		c->ival->duration_nanos = (int64_t)(flip_ns - c->ival_start_ns);
		c->opts.interval_fn(c->opts.interval_ctx, c->ival); /* it owns it now */
		c->ival = NULL;
		c->ts.intervals++;
	}
	c->ival_end_ns = next_boundary(c, flip_ns);
}

/* Re-reading /proc/kallsyms costs about 40 ms: at most this often. */
#define KALLSYMS_RELOAD_NS (60ULL * 1000000000ULL)

static struct sym_kallsyms *load_kallsyms(struct prof_collector *c)
{
	size_t nbad = 0;
	struct sym_kallsyms *k =
		sym_kallsyms__load(c->opts.kallsyms ? c->opts.kallsyms : "/proc/kallsyms", &nbad);

	c->ksyms_loaded_ns = now_mono_ns();
	return k;
}

/*
 * Kernel addresses without a symbol usually belong to a module loaded (or a
 * BPF program attached) after we read kallsyms. Called between drains, when
 * no symbol of the old table is in use.
 */
static void maybe_reload_kallsyms(struct prof_collector *c)
{
	struct sym_kallsyms *k;

	c->ksyms_missed = false;
	if (now_mono_ns() - c->ksyms_loaded_ns < KALLSYMS_RELOAD_NS)
		return;
	/*
	 * Between drains no kernel symbol is in use: free the old table first,
	 * so that the new one reuses its memory instead of fragmenting the heap.
	 */
	sym_kallsyms__free(c->ksyms);
	k = load_kallsyms(c);
	c->ksyms = k; /* NULL if the read failed: retried at the next new miss */
	c->ts.kallsyms_reloads++;
	/* The loader's transient peak (several MB) would otherwise stay in the heap. */
	malloc_trim(0);
}

/* Free heap glibc may keep before we hand it back (after a burst of symbolization). */
#define HEAP_FREE_TRIM_BYTES (2u << 20)

/*
 * A burst of work (a DWARF session opened and evicted, a big window
 * encoded) leaves freed memory in the heap that glibc keeps: measured 30 MB
 * free next to 18 MB in use after symbolizing large test binaries, and 3 MB
 * kept after idle files expired. Give it back when there is much of it and
 * more than at the last trim, or a minute later: trimmed pages stay counted
 * as free, so the free size alone would trim at every drain. The check is a
 * few microseconds.
 */
static void trim_heap(struct prof_collector *c, uint64_t now)
{
	struct mallinfo2 mi = mallinfo2();

	if (mi.fordblks <= HEAP_FREE_TRIM_BYTES)
		return;
	if (mi.fordblks < c->trimmed_free + (512u << 10) &&
	    now - c->trimmed_ns < 60ULL * 1000000000)
		return;
	malloc_trim(0);
	c->trimmed_free = mi.fordblks;
	c->trimmed_ns = now;
}

/* One drain: symbolize the inactive map set and hand it to the windows. */
static void drain(struct prof_collector *c, bool final)
{
	uint64_t flip_ns = 0, prev = c->last_flip_ns;
	int64_t prev_wall = c->last_flip_wall;
	int n;

	/*
	 * The cut this drain serves is taken now, before the flip: a window
	 * opened from here on asks for a cut of its own, which must not be
	 * lost, or its first batch would start before it and be left out.
	 */
	pthread_mutex_lock(&c->lock);
	c->cut_requested = false;
	pthread_mutex_unlock(&c->lock);

	/* Maps of processes announced before the flip are read first. */
	prof_sampler__consume_events(c->sampler, on_event, on_snapshot, c);
	c->batch = prof_profile__new(c->period_ns);
	n = prof_sampler__drain(c->sampler, on_sample, c, &flip_ns);
	/* After the flip, before their address spaces can be collected. */
	finish_deferred(c, 0);
	feed_pending(c);
	c->last_flip_ns = flip_ns;
	/* Wall time of the flip itself, not of the end of symbolization. */
	c->last_flip_wall = now_wall_ns() - (now_mono_ns() - flip_ns);
	c->batch->time_nanos = prev_wall;
	c->batch->duration_nanos = flip_ns - prev;

	c->ts.drains++;
	if (n < 0)
		c->ts.drain_errors++;
	else
		c->ts.map_counts_used = (uint32_t)n;
	c->ts.map_stacks_used = prof_sampler__last_stacks(c->sampler);
	pthread_mutex_lock(&c->lock);
	for (struct prof_window *w = c->windows; w; w = w->next) {
		if (w->done)
			continue;
		if (w->start_ns <= prev) {
			prof_profile__merge(w->profile, c->batch);
			if (!w->first_ns) {
				w->first_ns = prev;
				w->first_wall = prev_wall;
			}
			w->last_ns = flip_ns;
		}
		if (flip_ns >= w->end_ns || final) {
			finish_window(w, flip_ns);
			c->ts.windows++;
		}
	}
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);

	feed_interval(c, prev, prev_wall, flip_ns, final);
	prof_profile__free(c->batch);
	c->batch = NULL;
	prof_procs__gc(c->procs, flip_ns);
	if (c->opts.idle_ttl_ms && flip_ns > c->opts.idle_ttl_ms * 1000000ULL) {
		sym_dsos__expire_idle(c->dsos, flip_ns - c->opts.idle_ttl_ms * 1000000ULL);
		sym_dsos__expire_dwarf(c->dsos, flip_ns - c->opts.idle_ttl_ms * 1000000ULL);
	}
	if (c->unwinder)
		prof_unwinder__sweep(c->unwinder);
	sym_demangler__trim(c->demangler);
	if (c->ksyms_missed)
		maybe_reload_kallsyms(c);
	trim_heap(c, flip_ns);
	publish_stats(c);
}

/* Milliseconds until the next drain is due (0 = now). */
static int next_timeout_ms(struct prof_collector *c, uint64_t now)
{
	uint64_t due = c->last_flip_ns + (uint64_t)c->opts.drain_ms * 1000000ULL;

	if (c->opts.interval_fn && c->ival_end_ns < due)
		due = c->ival_end_ns;
	pthread_mutex_lock(&c->lock);
	if (c->cut_requested || c->stopping)
		due = now;
	for (struct prof_window *w = c->windows; w; w = w->next)
		if (!w->done && w->end_ns < due)
			due = w->end_ns;
	pthread_mutex_unlock(&c->lock);
	if (due <= now)
		return 0;
	/* Round up so that we never wake just before the deadline. */
	return (int)((due - now + 999999) / 1000000);
}

static void *collector_main(void *arg)
{
	struct prof_collector *c = arg;

	for (;;) {
		struct epoll_event ev[4];
		uint64_t now = now_mono_ns();
		int timeout = next_timeout_ms(c, now);
		bool stopping;

		if (c->nsyncq || c->ndeferred)
			timeout = 0; /* poll, and get on with the queues */

		if (timeout >= 0) {
			int k = epoll_wait(c->epfd, ev, ARRAY_SIZE(ev), timeout);

			for (int i = 0; i < k; i++) {
				if (ev[i].data.fd == c->wakefd) {
					uint64_t v;

					if (read(c->wakefd, &v, sizeof(v)) < 0 && errno != EAGAIN)
						pr_debug("wake fd: %s", strerror(errno));
				} else {
					prof_sampler__consume_events(c->sampler, on_event,
								     on_snapshot, c);
				}
			}
		}
		if (c->stop_async) {
			pthread_mutex_lock(&c->lock);
			c->stopping = true;
			pthread_mutex_unlock(&c->lock);
		}
		pthread_mutex_lock(&c->lock);
		stopping = c->stopping;
		pthread_mutex_unlock(&c->lock);
		if (next_timeout_ms(c, now_mono_ns()) == 0 || stopping)
			drain(c, stopping);
		if (stopping)
			break;
		if (c->nsyncq || c->ndeferred)
			run_syncs(c);
	}
	pthread_mutex_lock(&c->lock);
	c->stopped = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- set-up ---------------------------------------------------------------- */

/* The GNU build-id of the running kernel, from /sys/kernel/notes. */
static char *kernel_build_id(void)
{
	struct strbuf sb = STRBUF_INIT;
	char *id = NULL;
	size_t off = 0;

	if (read_file("/sys/kernel/notes", &sb, 1 << 16))
		goto out;
	while (off + 12 <= sb.len) {
		uint32_t namesz, descsz, type;
		size_t name_off = off + 12, desc_off;

		memcpy(&namesz, sb.buf + off, 4);
		memcpy(&descsz, sb.buf + off + 4, 4);
		memcpy(&type, sb.buf + off + 8, 4);
		desc_off = name_off + ((namesz + 3) & ~3U);
		if (desc_off + descsz > sb.len)
			break;
		if (type == 3 /* NT_GNU_BUILD_ID */ && namesz == 4 &&
		    memcmp(sb.buf + name_off, "GNU", 4) == 0 && descsz && descsz <= 64) {
			id = xmalloc(descsz * 2 + 1);
			for (uint32_t i = 0; i < descsz; i++)
				sprintf(id + 2 * i, "%02x", (unsigned char)sb.buf[desc_off + i]);
			break;
		}
		off = desc_off + ((descsz + 3) & ~3U);
	}
out:
	strbuf_release(&sb);
	return id;
}

struct prof_collector *prof_collector__start(const struct prof_collector_opts *opts)
{
	struct prof_sampler_opts so = {};
	struct prof_collector *c = xcalloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN};
	int err;

	c->opts = *opts;
	if (!c->opts.freq)
		c->opts.freq = DEFAULT_FREQ;
	if (!c->opts.drain_ms)
		c->opts.drain_ms = DEFAULT_DRAIN_MS;
	c->period_ns = 1000000000LL / c->opts.freq;
	c->epfd = c->wakefd = -1;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);

	c->kernel_build_id = kernel_build_id();
	c->dsos = sym_dsos__new();
	sym_dsos__set_dwarf_budget(c->dsos, c->opts.dwarf_budget);
	sym_dsos__set_idle_budget(c->dsos, c->opts.idle_budget);
	c->demangler = sym_demangler__new(0);
	c->vdso = sym_vdso__load_self();
	c->procs = prof_procs__new(c->dsos);

	so.freq = c->opts.freq;
	so.pid = c->opts.pid;
	so.kernel_stacks = !c->opts.no_kernel;
	so.max_stacks = c->opts.max_stacks;
	so.max_counts = c->opts.max_counts;
	so.drain_ms = c->opts.drain_ms;
	so.cfi_unwind = !c->opts.fp_only;
	so.unwind_rows = c->opts.unwind_rows;
	c->sampler = prof_sampler__open(&so);
	if (!c->sampler) {
		err = -errno;
		goto fail;
	}
	{
		struct prof_unwind_maps um;

		if (prof_sampler__unwind_maps(c->sampler, &um))
			c->unwinder = prof_unwinder__new(&um, c->vdso);
		c->ts.cfi = c->unwinder != NULL;
	}
	/*
	 * After loading: our own programs (the exec/exit tracepoints, which
	 * samples interrupt under process churn) are in kallsyms as [bpf]
	 * symbols only from now on.
	 */
	c->ksyms = load_kallsyms(c);
	if (!c->ksyms)
		pr_warn("kernel symbols unavailable (%s): kernel frames will be [unknown]",
			strerror(errno));
	c->ts.ncpus = prof_sampler__ncpus(c->sampler);
	prof_sampler__capacity(c->sampler, &c->ts.map_stacks_cap, &c->ts.map_counts_cap);
	c->ts.freq = c->opts.freq;

	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->epfd < 0 || c->wakefd < 0) {
		err = -errno;
		pr_err("creating the collector's epoll/eventfd: %s", strerror(-err));
		goto fail;
	}
	ev.data.fd = c->wakefd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->wakefd, &ev)) {
		err = -errno;
		pr_err("epoll_ctl(eventfd): %s", strerror(-err));
		goto fail;
	}
	ev.data.fd = prof_sampler__events_fd(c->sampler);
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
		err = -errno;
		pr_err("epoll_ctl(ring buffer): %s", strerror(-err));
		goto fail;
	}
	c->last_flip_ns = now_mono_ns();
	c->last_flip_wall = now_wall_ns();
	if (c->opts.interval_fn)
		c->ival_end_ns = next_boundary(c, c->last_flip_ns);
	publish_stats(c);
	err = -pthread_create(&c->thread, NULL, collector_main, c);
	if (err) {
		pr_err("starting the collector thread: %s", strerror(-err));
		goto fail;
	}
	c->thread_started = true;
	return c;
fail:
	prof_collector__free(c);
	errno = -err;
	return NULL;
}

static void wake(struct prof_collector *c)
{
	uint64_t one = 1;

	/* Fails only when the counter would overflow, i.e. a wake is pending. */
	if (write(c->wakefd, &one, sizeof(one)) < 0)
		return;
}

void prof_collector__stop(struct prof_collector *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopping = true;
	if (!c->thread_started)
		c->stopped = true;
	pthread_mutex_unlock(&c->lock);
	if (c->wakefd >= 0)
		wake(c);
}

void prof_collector__stop_async(struct prof_collector *c)
{
	c->stop_async = 1;
	if (c->wakefd >= 0)
		wake(c);
}

bool prof_collector__stopped(struct prof_collector *c)
{
	bool s;

	pthread_mutex_lock(&c->lock);
	s = c->stopped || c->stop_async;
	pthread_mutex_unlock(&c->lock);
	return s;
}

void prof_collector__free(struct prof_collector *c)
{
	if (!c)
		return;
	if (c->thread_started) {
		prof_collector__stop(c);
		pthread_join(c->thread, NULL);
	}
	while (c->windows) {
		struct prof_window *w = c->windows;

		c->windows = w->next;
		prof_profile__free(w->profile);
		free(w);
	}
	prof_profile__free(c->ival);
	for (size_t i = 0; i < c->npending; i++)
		free(c->pending[i]);
	free(c->pending);
	prof_unwinder__free(c->unwinder);
	free(c->syncq);
	for (size_t i = 0; i < c->ndeferred; i++)
		free(c->deferred[i]);
	prof_sampler__free(c->sampler);
	prof_procs__free(c->procs);
	sym_dsos__free(c->dsos);
	sym_kallsyms__free(c->ksyms);
	sym_demangler__free(c->demangler);
	sym_vdso__free(c->vdso);
	free(c->kernel_build_id);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->wakefd >= 0)
		close(c->wakefd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* ---- windows ----------------------------------------------------------------- */

struct prof_window *prof_collector__window_begin(struct prof_collector *c, uint64_t duration_ms)
{
	struct prof_window *w;

	pthread_mutex_lock(&c->lock);
	if (c->stopping || c->stop_async) {
		pthread_mutex_unlock(&c->lock);
		errno = ECANCELED;
		return NULL;
	}
	w = xcalloc(1, sizeof(*w));
	w->start_ns = now_mono_ns();
	w->end_ns = w->start_ns + duration_ms * 1000000ULL;
	w->profile = prof_profile__new(c->period_ns);
	w->next = c->windows;
	c->windows = w;
	/* Cut now, so that samples from before the window stay out of it. */
	c->cut_requested = true;
	pthread_mutex_unlock(&c->lock);
	wake(c);
	return w;
}

static void unlink_window(struct prof_collector *c, struct prof_window *w)
{
	for (struct prof_window **pp = &c->windows; *pp; pp = &(*pp)->next)
		if (*pp == w) {
			*pp = w->next;
			return;
		}
}

int prof_window__wait(struct prof_collector *c, struct prof_window *w, int timeout_ms,
		      struct prof_profile **out)
{
	struct timespec deadline;

	if (timeout_ms >= 0) {
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&c->lock);
	while (!w->done && !c->stopped) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&c->cond, &c->lock);
		} else if (pthread_cond_timedwait(&c->cond, &c->lock, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	if (!w->done && c->stopped)
		finish_window(w, now_mono_ns()); /* the thread is gone: take what we have */
	if (!w->done) {
		pthread_mutex_unlock(&c->lock);
		return -ETIMEDOUT;
	}
	unlink_window(c, w);
	pthread_mutex_unlock(&c->lock);
	*out = w->profile;
	free(w);
	return 0;
}

uint64_t prof_window__remaining_ms(struct prof_collector *c, struct prof_window *w)
{
	uint64_t now = now_mono_ns(), end;

	pthread_mutex_lock(&c->lock);
	end = w->end_ns;
	pthread_mutex_unlock(&c->lock);
	return end > now ? (end - now) / 1000000ULL : 0;
}

int prof_collector__window(struct prof_collector *c, unsigned int seconds,
			   struct prof_profile **out)
{
	struct prof_window *w = prof_collector__window_begin(c, (uint64_t)seconds * 1000);

	if (!w)
		return -errno;
	return prof_window__wait(c, w, -1, out);
}

void prof_collector__stats(struct prof_collector *c, struct prof_collector_stats *out)
{
	uint64_t bpf[PROF_STAT__COUNT] = {};

	/* The BPF counters are read outside the lock: a syscall per counter. */
	if (c->sampler)
		prof_sampler__stats(c->sampler, bpf);
	pthread_mutex_lock(&c->lock);
	*out = c->stats; /* as of the last drain (see publish_stats) */
	pthread_mutex_unlock(&c->lock);
	memcpy(out->bpf, bpf, sizeof(bpf));
}
