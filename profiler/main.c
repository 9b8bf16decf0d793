// SPDX-License-Identifier: MIT
/*
 * bpfprof — continuous, whole-system CPU profiler.
 *
 *   bpfprof record [-F HZ] [-d SECONDS] [-p PID] [-o FILE]
 *   bpfprof agent [--http-address ADDR:PORT] [-F HZ]
 *
 * Signals: SIGINT and SIGTERM are blocked in every thread and taken by the
 * main thread with sigtimedwait(), so no code runs in signal context.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "../server/server.h"
#include "collector.h"
#include "encode.h"
#include "push.h"
#include "sampler.h"
#include "store.h"
#include "symbolize.h"

#define BPFPROF_VERSION "0.1.0"
#define MAX_FREQ 10000
#define DEFAULT_OUTPUT "bpfprof.svg"

static const char usage_main[] =
	"Usage: bpfprof COMMAND [OPTIONS]\n"
	"\n"
	"A whole-system CPU profiler: samples every CPU with eBPF (cpu-clock, 99 Hz),\n"
	"symbolizes kernel and user stacks locally and writes pprof, folded stacks or\n"
	"an interactive flame graph.\n"
	"\n"
	"Commands:\n"
	"  record    profile for a while and write one file (pprof, folded or SVG)\n"
	"  agent     run continuously and serve profiles over HTTP\n"
	"  symbolize print function, file:line and inlined frames of addresses\n"
	"            (addr2line-like)\n"
	"  help      show this help, or `bpfprof help COMMAND`\n"
	"  version   print the version\n"
	"\n"
	"Needs root, or the capabilities CAP_BPF and CAP_PERFMON.\n"
	"Run `bpfprof COMMAND --help` for the options of a command.\n";

static const char usage_record[] =
	"Usage: bpfprof record [-F HZ] [-d SECONDS] [-p PID] [-o FILE]\n"
	"\n"
	"Samples every CPU (or one process) for a while and writes one profile.\n"
	"The format follows the file name:\n"
	"  .pb.gz, .pprof   pprof (gzip protobuf), for go tool pprof, Parca, Pyroscope\n"
	"  .folded, .txt    folded stacks (comm;root;...;leaf count), for flamegraph.pl,\n"
	"                   inferno, speedscope\n"
	"  .svg             interactive flame graph (click to zoom, search)\n"
	"\n"
	"Options:\n"
	"  -F, --freq HZ         samples per second per CPU (default 99, max 10000)\n"
	"  -d, --duration SECS   how long to record (default 10); Ctrl-C stops early\n"
	"                        and still writes the file\n"
	"  -p, --pid PID         only this process (and its threads); the recording\n"
	"                        ends early if the process exits\n"
	"  -o, --output FILE     where to write (default " DEFAULT_OUTPUT "; \"-\" is stdout,\n"
	"                        then --format is needed)\n"
	"      --format FMT      pprof, folded or svg, overriding the file name\n"
	"      --no-kernel       do not capture kernel stacks\n"
	"  -l, --lines           add the source position to frame names in folded and\n"
	"                        SVG output: \"name (file.c:12)\" (pprof always has it)\n"
	"      --dwarf-memory MB memory for DWARF (file:line, inlined frames), default\n"
	"                        1024; files that do not fit keep symbol names; 0 = off\n"
	"      --max-stacks N    distinct stacks kept between drains (default: CPUs x\n"
	"                        HZ x 5 s / 2, from 4096 to 65536)\n"
	"      --max-counts N    distinct (thread, stack) pairs between drains (default as\n"
	"                        --max-stacks); beyond it samples are dropped and counted\n"
	"      --unwind MODE     user stacks: cfi (default: .eh_frame rows in the kernel,\n"
	"                        frame pointers where there are none) or fp (frame\n"
	"                        pointers only, as perf -g)\n"
	"      --unwind-rows N   unwind rows the kernel holds (default 1048576, 8 bytes\n"
	"                        each; libc takes 28,000)\n"
	"  -q, --quiet           no progress and no summary line\n"
	"  -v, --verbose         more log output (repeat for debug)\n"
	"  -h, --help            this help\n"
	"\n"
	"On a terminal it shows the time left; it ends with a summary: samples,\n"
	"processes and drops, then how user stack walks ended (complete, truncated,\n"
	"or why they stopped).\n";

static const char usage_agent[] =
	"Usage: bpfprof agent [--http-address ADDR:PORT] [-F HZ]\n"
	"\n"
	"Samples every CPU continuously and serves profiles over HTTP until SIGINT\n"
	"or SIGTERM, then detaches everything and exits 0.\n"
	"\n"
	"Routes:\n"
	"  /debug/pprof/profile?seconds=N  gzip pprof of the next N seconds (default 30,\n"
	"                                  max 300), as Parca and Pyroscope scrape it\n"
	"  /flamegraph.svg?seconds=N       interactive flame graph of the next N seconds\n"
	"  /folded?seconds=N               folded stacks of the next N seconds\n"
	"  /debug/pprof/                   index;  /healthz  liveness and counters\n"
	"  /metrics                        the agent's own metrics (Prometheus text)\n"
	"  /api/timeseries, /api/top, /api/processes\n"
	"                                  JSON from the history (default: the last hour)\n"
	"The profile routes and /api/ take start=/end= (history) and the filters\n"
	"pid=, comm= and container= (a container id or its first 12+ hex digits).\n"
	"Text and JSON are compressed for clients that send Accept-Encoding: zstd or gzip.\n"
	"\n"
	"Options:\n"
	"      --http-address ADDR:PORT  where to listen (default 127.0.0.1:7071;\n"
	"                                \":7071\" listens on every address)\n"
	"      --http-token-file FILE    require \"Authorization: Bearer <token>\" on every\n"
	"                                route but /healthz; the token is FILE's contents\n"
	"                                (trailing newline removed; mode 0600 or 0400)\n"
	"  -F, --freq HZ                 samples per second per CPU (default 99)\n"
	"      --no-kernel               do not capture kernel stacks\n"
	"      --dwarf-memory MB         memory for DWARF (file:line, inlined frames),\n"
	"                                default 16 (libc's debug info needs about 30);\n"
	"                                files that do not fit keep symbol names; 0 = off\n"
	"      --store DIR               local history (default /var/lib/bpfprof): every\n"
	"                                interval, zstd-compressed, queried with start=/end=\n"
	"      --no-store                keep no history\n"
	"      --interval SECONDS        history resolution (default 10)\n"
	"      --retention HOURS         how long history is kept (default 24)\n"
	"      --store-max-mb MB         history size bound (default 1024); the oldest goes\n"
	"                                first, and writing stops when the disk is nearly full\n"
	"      --symbol-cache MB         memory kept for the symbols of files no process\n"
	"                                maps any more, least recently used out first\n"
	"                                and for 2 minutes at most (default 16)\n"
	"      --max-stacks N            distinct stacks kept between drains (default: CPUs\n"
	"                                x HZ x 5 s / 2, from 4096 to 65536)\n"
	"      --max-counts N            distinct (thread, stack) pairs between drains\n"
	"                                (default as --max-stacks); beyond it samples are\n"
	"                                dropped and counted\n"
	"      --unwind MODE             user stacks: cfi (default) or fp (frame\n"
	"                                pointers only); see bpfprof record --help\n"
	"      --unwind-rows N           unwind rows the kernel holds (default 1048576)\n"
	"      --push-url URL            push every interval to Grafana Pyroscope:\n"
	"                                POST URL/ingest?...&format=pprof, retried with\n"
	"                                backoff (user:password@ in URL is basic auth,\n"
	"                                but ps shows it: see --push-auth-file); with the\n"
	"                                store, what a previous run stored but could not\n"
	"                                push goes first (DIR/push-cursor remembers)\n"
	"      --service-name NAME       Pyroscope service_name (default: the hostname)\n"
	"      --label NAME=VALUE        extra label on pushed profiles (repeatable);\n"
	"                                a hostname label is always sent\n"
	"      --push-queue N            intervals kept while Pyroscope is unreachable,\n"
	"                                or from before a restart (default 360 with the\n"
	"                                store, where a waiting interval costs no\n"
	"                                memory; 30 with --no-store); beyond it the\n"
	"                                oldest are dropped and counted\n"
	"      --push-tenant ID          multi-tenant Pyroscope: send X-Scope-OrgID: ID\n"
	"      --push-auth-file FILE     push credentials, kept out of ps: FILE holds\n"
	"                                USER:PASSWORD (basic auth) or a bearer token\n"
	"                                (no ':'); one trailing newline is removed; mode\n"
	"                                0600 or 0400; not with user:password@ in the URL\n"
	"  -v, --verbose                 more log output (repeat for debug)\n"
	"  -h, --help                    this help\n";

static int parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* --dwarf-memory MB, --symbol-cache MB */
static int parse_dwarf_memory(const char *s, uint64_t *bytes)
{
	unsigned long v;

	if (parse_uint(s, 0, 1UL << 20, &v))
		return -EINVAL;
	*bytes = (uint64_t)v << 20;
	return 0;
}

/* parse_uint() into a uint32_t. */
static int parse_u32(const char *s, unsigned long min, unsigned long max, uint32_t *out)
{
	unsigned long v;

	if (max > UINT32_MAX || parse_uint(s, min, max, &v))
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* --max-stacks/--max-counts: 1M counts entries are about 130 MB of preallocated kernel memory. */
static int parse_map_size(const char *s, uint32_t *out)
{
	return parse_u32(s, 16, 1UL << 20, out);
}

/* Long options without a short form. */
enum { OPT_UNWIND = 1000, OPT_UNWIND_ROWS, OPT_PUSH_TENANT, OPT_PUSH_AUTH_FILE };

/* --unwind cfi|fp */
static int parse_unwind(const char *s, bool *fp_only)
{
	if (strcmp(s, "cfi") == 0)
		*fp_only = false;
	else if (strcmp(s, "fp") == 0)
		*fp_only = true;
	else
		return -EINVAL;
	return 0;
}

/* How user stack walks ended, for the record summary: "99.1% complete; 3 fp_end, ..." */
static void unwind_summary(const struct prof_collector_stats *st, struct strbuf *sb)
{
	uint64_t all = 0, done;

	for (int i = 1; i < PROF_UW__COUNT; i++)
		if (i != PROF_UW_SNAPSHOT)
			all += st->unwind_stops[i];
	/* Snapshots end in user space: count how those walks ended instead. */
	for (int i = 1; i < PROF_UW__COUNT; i++)
		all += st->unwind.snapshot_stops[i];
	if (!all)
		return;
	done = st->unwind_stops[PROF_UW_COMPLETE] + st->unwind.snapshot_stops[PROF_UW_COMPLETE];
	strbuf_addf(sb, "bpfprof: user stacks: %.1f%% complete",
		    100.0 * (double)done / (double)all);
	for (int i = 2; i < PROF_UW__COUNT; i++) {
		uint64_t n = st->unwind_stops[i] + st->unwind.snapshot_stops[i];

		if (i == PROF_UW_SNAPSHOT)
			n = st->unwind_stops[i];
		if (n)
			strbuf_addf(sb, ", %llu %s", (unsigned long long)n, prof_uw_stop_name(i));
	}
	strbuf_addf(sb, "; %llu unwind tables, %.1f MB\n", (unsigned long long)st->unwind.tables,
		    (double)st->unwind.rows_used * sizeof(struct prof_unwind_row) / 1e6);
}

static int bad_option(const char *cmd, const char *what, const char *val)
{
	fprintf(stderr, "bpfprof %s: invalid %s: '%s' (see bpfprof %s --help)\n", cmd, what, val,
		cmd);
	return 2;
}

/* Blocks SIGINT/SIGTERM in this thread and every thread started later. */
static void block_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

static int check_privileges(void)
{
	char why[256];

	if (prof_check_privileges(why, sizeof(why)) == 0)
		return 0;
	fprintf(stderr, "bpfprof: %s\n", why);
	return 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Distinct pids in @p: sort and count runs, O(n log n). */
static unsigned int count_processes(const struct prof_profile *p)
{
	uint32_t *pids = xmalloc((p->nsamples + 1) * sizeof(*pids));
	unsigned int n = 0;

	for (uint32_t i = 0; i < p->nsamples; i++)
		pids[i] = p->samples[i].pid;
	if (p->nsamples > 1)
		qsort(pids, p->nsamples, sizeof(*pids), cmp_u32);
	for (uint32_t i = 0; i < p->nsamples; i++)
		if (i == 0 || pids[i] != pids[i - 1])
			n++;
	free(pids);
	return n;
}

/* The thread group (process) id of task @pid from /proc, or -errno. */
static int read_tgid(int pid)
{
	struct strbuf sb = STRBUF_INIT;
	char path[32], *p;
	int tgid = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	if (read_file(path, &sb, 1 << 16) == 0 && (p = strstr(sb.buf, "\nTgid:")))
		tgid = atoi(p + 6);
	strbuf_release(&sb);
	return tgid;
}

/*
 * Fails early, before a recording that may last hours, when @path cannot be
 * written: its directory must exist and be writable (the file is written to
 * a temporary name there, then renamed).
 */
static int check_output(const char *path)
{
	char *dir, *slash;
	struct stat st;
	int ok;

	if (!strcmp(path, "-"))
		return 0;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		fprintf(stderr, "bpfprof record: %s is a directory\n", path);
		return -EISDIR;
	}
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		slash[1] = '\0';
	else
		*slash = '\0';
	ok = access(dir, W_OK | X_OK) == 0;
	if (!ok)
		fprintf(stderr, "bpfprof record: cannot write to %s: %s\n", dir, strerror(errno));
	free(dir);
	return ok ? 0 : -EACCES;
}

/* True when @pid is gone or a zombie (kill(pid, 0) still succeeds on a zombie). */
static bool process_gone(int pid)
{
	struct strbuf sb = STRBUF_INIT;
	char path[32], *p;
	bool gone;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, &sb, 4096)) {
		strbuf_release(&sb);
		return true;
	}
	p = strrchr(sb.buf, ')');
	gone = !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
	strbuf_release(&sb);
	return gone;
}

/*
 * The options of the collector that `record` and `agent` share (-F, --no-kernel,
 * --unwind, --unwind-rows, --max-stacks, --max-counts, --dwarf-memory) into
 * @co. -1 when @opt is not one of them, 0 when it was taken, else the exit
 * code of a bad value (reported).
 */
static int collector_option(const char *cmd, int opt, const char *arg,
			    struct prof_collector_opts *co)
{
	unsigned long v;

	switch (opt) {
	case 'F':
		if (parse_uint(arg, 1, MAX_FREQ, &v))
			return bad_option(cmd, "frequency (1..10000)", arg);
		co->freq = v;
		return 0;
	case 'K':
		co->no_kernel = true;
		return 0;
	case OPT_UNWIND:
		if (parse_unwind(arg, &co->fp_only))
			return bad_option(cmd, "--unwind mode (cfi or fp)", arg);
		return 0;
	case OPT_UNWIND_ROWS:
		if (parse_u32(arg, 1024, 1UL << 24, &co->unwind_rows))
			return bad_option(cmd, "--unwind-rows (1024..16777216)", arg);
		return 0;
	case 'S':
	case 'C':
		if (parse_map_size(arg, opt == 'S' ? &co->max_stacks : &co->max_counts))
			return bad_option(cmd, "map size (16..1048576)", arg);
		return 0;
	case 'M':
		if (parse_dwarf_memory(arg, &co->dwarf_budget))
			return bad_option(cmd, "--dwarf-memory in MB", arg);
		return 0;
	}
	return -1;
}

static int cmd_record(int argc, char **argv)
{
	static const struct option opts[] = {
		{"freq", required_argument, NULL, 'F'},
		{"duration", required_argument, NULL, 'd'},
		{"pid", required_argument, NULL, 'p'},
		{"output", required_argument, NULL, 'o'},
		{"format", required_argument, NULL, 'f'},
		{"no-kernel", no_argument, NULL, 'K'},
		{"max-stacks", required_argument, NULL, 'S'},
		{"max-counts", required_argument, NULL, 'C'},
		{"lines", no_argument, NULL, 'l'},
		{"dwarf-memory", required_argument, NULL, 'M'},
		{"unwind", required_argument, NULL, OPT_UNWIND},
		{"unwind-rows", required_argument, NULL, OPT_UNWIND_ROWS},
		{"quiet", no_argument, NULL, 'q'},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	struct prof_collector_opts co = {
		.freq = 99, .dwarf_budget = 1024ULL << 20, .idle_budget = UINT64_MAX};
	const char *output = DEFAULT_OUTPUT, *format = NULL;
	unsigned long duration = 10, v;
	struct prof_collector_stats st;
	struct prof_profile *prof = NULL;
	struct strbuf out = STRBUF_INIT;
	struct prof_collector *c;
	struct prof_window *w;
	bool quiet = false, tty = isatty(STDERR_FILENO), pid_gone = false, with_lines = false;
	uint64_t drops;
	sigset_t sigs;
	int opt, fmt, err, ret = 1;

	while ((opt = getopt_long(argc, argv, "F:d:p:o:lqvh", opts, NULL)) != -1) {
		err = collector_option("record", opt, optarg, &co);
		if (err >= 0) {
			if (err)
				return err;
			continue;
		}
		switch (opt) {
		case 'd':
			if (parse_uint(optarg, 1, 86400, &v))
				return bad_option("record", "duration in seconds (1..86400)",
						  optarg);
			duration = v;
			break;
		case 'p':
			if (parse_uint(optarg, 1, INT_MAX, &v))
				return bad_option("record", "pid", optarg);
			co.pid = v;
			break;
		case 'o':
			output = optarg;
			break;
		case 'f':
			format = optarg;
			break;
		case 'l':
			with_lines = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			fputs(usage_record, stdout);
			return 0;
		default:
			fputs(usage_record, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bpfprof record: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (format) {
		fmt = strcmp(format, "pprof") == 0    ? PROF_FMT_PPROF
		      : strcmp(format, "folded") == 0 ? PROF_FMT_FOLDED
		      : strcmp(format, "svg") == 0    ? PROF_FMT_SVG
						      : -EINVAL;
		if (fmt < 0)
			return bad_option("record", "format (pprof, folded, svg)", format);
	} else {
		fmt = prof_format_from_path(output);
		if (fmt < 0) {
			fprintf(stderr,
				"bpfprof record: cannot tell the format of '%s': name it .pb.gz, "
				".pprof, .folded, .txt or .svg, or pass --format\n",
				output);
			return 2;
		}
	}
	if (co.pid) {
		int tgid = read_tgid(co.pid);

		if (tgid <= 0) {
			fprintf(stderr, "bpfprof record: no process with pid %d\n", co.pid);
			return 1;
		}
		if (tgid != co.pid) {
			fprintf(stderr,
				"bpfprof record: %d is a thread of process %d; recording the "
				"process\n",
				co.pid, tgid);
			co.pid = tgid;
		}
	}
	if (check_output(output))
		return 1;
	if (check_privileges())
		return 1;

	block_signals(&sigs);
	c = prof_collector__start(&co);
	if (!c)
		return 1;
	malloc_trim(0); /* libbpf's parsed kernel BTF is freed by now */
	w = prof_collector__window_begin(c, duration * 1000);
	if (!w) {
		pr_err("cannot start recording: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		struct timespec tick = {1, 0};
		uint64_t left = prof_window__remaining_ms(c, w);
		siginfo_t si;

		if (tty && !quiet)
			fprintf(stderr, "\rbpfprof: recording, %llu s left (Ctrl-C to stop early) ",
				(unsigned long long)(left + 999) / 1000);
		if (left < 999)
			tick = (struct timespec){0, (long)left * 1000000L + 1000000L};
		if (sigtimedwait(&sigs, &si, &tick) > 0)
			prof_collector__stop(c);
		/* Like perf record -p: the recording ends with the process. */
		if (co.pid && !pid_gone && process_gone(co.pid)) {
			pid_gone = true;
			if (!quiet)
				fprintf(stderr, "%sbpfprof: process %d exited\n",
					tty ? "\r\033[K" : "", co.pid);
			prof_collector__stop(c);
		}
		err = prof_window__wait(c, w, 0, &prof);
		if (err == 0)
			break;
		if (err != -ETIMEDOUT) {
			pr_err("recording failed: %s", strerror(-err));
			goto out;
		}
	}
	if (tty && !quiet)
		fputs("\r\033[K", stderr);
	prof_collector__stats(c, &st);

	if (with_lines && fmt != PROF_FMT_PPROF) {
		/* pprof has file:line in its Lines already; the text formats need it in names. */
		struct prof_profile *named = prof_profile__with_line_names(prof);

		prof_profile__free(prof);
		prof = named;
	}
	err = prof_encode(prof, fmt, &out);
	if (err) {
		pr_err("encoding the profile: %s", strerror(-err));
		goto out;
	}
	err = write_file(output, out.buf, out.len);
	if (err) {
		pr_err("writing %s: %s", output, strerror(-err));
		goto out;
	}
	drops = st.bpf[PROF_STAT_COUNTS_FULL];
	if (!quiet)
		fprintf(stderr,
			"bpfprof: wrote %s: %llu samples, %u processes, %llu dropped "
			"(%llu stacks lost, %llu events lost)\n",
			strcmp(output, "-") ? output : "stdout",
			(unsigned long long)prof->total_count, count_processes(prof),
			(unsigned long long)drops,
			(unsigned long long)(st.kstacks_lost + st.ustacks_lost),
			(unsigned long long)st.bpf[PROF_STAT_EVENTS_LOST]);
	if (!quiet) {
		struct strbuf us = STRBUF_INIT;

		unwind_summary(&st, &us);
		fputs(us.buf ? us.buf : "", stderr);
		strbuf_release(&us);
	}
	ret = 0;
out:
	prof_profile__free(prof);
	strbuf_release(&out);
	prof_collector__free(c);
	return ret;
}

/* ---- agent -------------------------------------------------------------------- */

static void agent_status(void *ctx, struct strbuf *out)
{
	struct prof_collector_stats st;
	const struct sym_stats *y = &st.sym;

	prof_collector__stats(ctx, &st);
	strbuf_addf(out, "cpus %d\nfrequency_hz %u\n", st.ncpus, st.freq);
	strbuf_addf(out, "samples %llu\nidle_samples %llu\ndropped_counts_map_full %llu\n",
		    (unsigned long long)st.samples, (unsigned long long)st.bpf[PROF_STAT_IDLE],
		    (unsigned long long)st.bpf[PROF_STAT_COUNTS_FULL]);
	strbuf_addf(out,
		    "stacks_lost_kernel %llu\nstacks_lost_user %llu\nstacks_map_full %llu\n"
		    "stacks_truncated %llu\nevents_lost %llu\nleaf_caller_fixups %llu\n",
		    (unsigned long long)st.kstacks_lost, (unsigned long long)st.ustacks_lost,
		    (unsigned long long)st.bpf[PROF_STAT_STACK_FULL],
		    (unsigned long long)st.bpf[PROF_STAT_STACK_TRUNCATED],
		    (unsigned long long)st.bpf[PROF_STAT_EVENTS_LOST],
		    (unsigned long long)st.leaf_fixups);
	strbuf_addf(out,
		    "frames %llu\nframes_unknown %llu\nframes_dwarf %llu\ndrains %llu\n"
		    "windows %llu\naddress_spaces %llu\n",
		    (unsigned long long)st.frames, (unsigned long long)st.frames_unknown,
		    (unsigned long long)st.frames_dwarf, (unsigned long long)st.drains,
		    (unsigned long long)st.windows, (unsigned long long)st.procs.aspaces);
	/* The symbolizer's caches: size and hit rates. */
	strbuf_addf(out,
		    "symbol_files %llu\nsymbol_files_loaded %llu\nsymbols %llu\n"
		    "symbol_bytes %llu\nsymbol_lookups %llu\nsymbol_hits %llu\n",
		    (unsigned long long)y->dsos, (unsigned long long)y->dsos_loaded,
		    (unsigned long long)y->symbols, (unsigned long long)y->bytes,
		    (unsigned long long)y->lookups, (unsigned long long)y->hits);
	strbuf_addf(out,
		    "dwarf_files %llu\ndwarf_bytes %llu\ndwarf_over_budget %llu\n"
		    "dwarf_lookups %llu\ndwarf_hits %llu\ndwarf_cache_hits %llu\n"
		    "kallsyms_symbols %llu\nkallsyms_reloads %llu\n",
		    (unsigned long long)y->dwarf_loaded, (unsigned long long)y->dwarf_bytes,
		    (unsigned long long)y->dwarf_over_budget, (unsigned long long)y->dwarf_lookups,
		    (unsigned long long)y->dwarf_hits, (unsigned long long)y->dwarf_cache_hits,
		    (unsigned long long)st.kallsyms_symbols,
		    (unsigned long long)st.kallsyms_reloads);
	/* User stack walks: how they ended, in the kernel and for snapshots. */
	strbuf_addf(out, "unwind_mode %s\n", st.cfi ? "cfi" : "fp");
	for (int i = 1; st.cfi && i < PROF_UW__COUNT; i++)
		strbuf_addf(out, "unwind_%s %llu\n", prof_uw_stop_name(i),
			    (unsigned long long)(st.unwind_stops[i] +
						 (i == PROF_UW_SNAPSHOT
							  ? 0
							  : st.unwind.snapshot_stops[i])));
	if (st.cfi)
		strbuf_addf(out,
			    "unwind_frames_cfi %llu\nunwind_frames_fp %llu\n"
			    "unwind_frames_signal %llu\nunwind_tables %llu\nunwind_rows %llu\n"
			    "unwind_rows_capacity %llu\nunwind_files_without_cfi %llu\n"
			    "unwind_tables_evicted %llu\nunwind_snapshots_finished %llu\n"
			    "unwind_row_copy_bytes %llu\n",
			    (unsigned long long)st.bpf[PROF_STAT_UW_CFI_FRAMES],
			    (unsigned long long)st.bpf[PROF_STAT_UW_FP_FRAMES],
			    (unsigned long long)st.bpf[PROF_STAT_UW_SIGNAL_FRAMES],
			    (unsigned long long)st.unwind.tables,
			    (unsigned long long)st.unwind.rows_used,
			    (unsigned long long)st.unwind.rows_capacity,
			    (unsigned long long)st.unwind.files_without_cfi,
			    (unsigned long long)st.unwind.tables_evicted,
			    (unsigned long long)st.unwind.snapshots,
			    (unsigned long long)st.unwind.row_copy_bytes);
}

/* One metric family: HELP and TYPE, then the sample (without labels). */
static void metric(struct strbuf *out, const char *name, const char *type, const char *help,
		   double value)
{
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.15g\n", name, help, name, type, name,
		    value);
}

static void metric_head(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_addf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The agent's CPU seconds (user + system) and resident bytes, from /proc/self. */
static void self_usage(double *cpu_s, double *rss_bytes)
{
	struct strbuf sb = STRBUF_INIT;
	unsigned long utime = 0, stime = 0;
	long rss_pages = 0;
	char *p;

	*cpu_s = *rss_bytes = 0;
	if (read_file("/proc/self/stat", &sb, 4096) == 0 && (p = strrchr(sb.buf, ')')) &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) ==
		    2)
		*cpu_s = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
	if (read_file("/proc/self/statm", &sb, 4096) == 0 &&
	    sscanf(sb.buf, "%*s %ld", &rss_pages) == 1)
		*rss_bytes = (double)rss_pages * (double)sysconf(_SC_PAGESIZE);
	strbuf_release(&sb);
}

static void agent_metrics(void *ctx, struct strbuf *out)
{
	struct prof_collector_stats st;
	const struct sym_stats *y = &st.sym;
	double cpu, rss;

	prof_collector__stats(ctx, &st);
	self_usage(&cpu, &rss);
	metric(out, "bpfprof_process_cpu_seconds_total", "counter",
	       "CPU time of the agent process (user and system).", cpu);
	metric(out, "bpfprof_process_resident_memory_bytes", "gauge",
	       "Resident memory of the agent process.", rss);
	{
		struct mallinfo2 mi = mallinfo2();

		metric_head(out, "bpfprof_heap_bytes", "gauge",
			    "glibc heap: bytes in use, and free bytes it holds (fragmentation).");
		strbuf_addf(out, "bpfprof_heap_bytes{state=\"in_use\"} %zu\n",
			    mi.uordblks + mi.hblkhd);
		strbuf_addf(out, "bpfprof_heap_bytes{state=\"free\"} %zu\n", mi.fordblks);
	}
	metric(out, "bpfprof_sampling_frequency_hertz", "gauge", "Samples per second per CPU.",
	       st.freq);
	metric(out, "bpfprof_cpus_sampled", "gauge", "CPUs with a sampling perf event.", st.ncpus);
	metric(out, "bpfprof_samples_total", "counter",
	       "Samples counted by the BPF program (idle excluded).", st.bpf[PROF_STAT_SAMPLES]);
	metric(out, "bpfprof_idle_samples_total", "counter",
	       "Samples of the idle task, left out of profiles.", st.bpf[PROF_STAT_IDLE]);
	metric_head(out, "bpfprof_samples_dropped_total", "counter",
		    "Samples lost entirely, by reason.");
	strbuf_addf(out, "bpfprof_samples_dropped_total{reason=\"counts_map_full\"} %llu\n",
		    (unsigned long long)st.bpf[PROF_STAT_COUNTS_FULL]);
	metric_head(out, "bpfprof_stack_failures_total", "counter",
		    "Stacks that could not be captured or unwound, by stack and reason (the "
		    "sample is kept with a [... stack lost] frame, or [truncated]).");
	strbuf_addf(
		out,
		"bpfprof_stack_failures_total{stack=\"kernel\",reason=\"capture_failed\"} %llu\n"
		"bpfprof_stack_failures_total{stack=\"user\",reason=\"capture_failed\"} %llu\n"
		"bpfprof_stack_failures_total{stack=\"any\",reason=\"stacks_map_full\"} %llu\n"
		"bpfprof_stack_failures_total{stack=\"any\",reason=\"truncated\"} %llu\n",
		(unsigned long long)st.bpf[PROF_STAT_KSTACK_FAIL],
		(unsigned long long)st.bpf[PROF_STAT_USTACK_FAIL],
		(unsigned long long)st.bpf[PROF_STAT_STACK_FULL],
		(unsigned long long)st.bpf[PROF_STAT_STACK_TRUNCATED]);
	metric(out, "bpfprof_process_events_lost_total", "counter",
	       "Process events (new pid, exec, exit) lost to a full ring buffer.",
	       st.bpf[PROF_STAT_EVENTS_LOST]);
	metric(out, "bpfprof_leaf_caller_fixups_total", "counter",
	       "Samples whose caller a frame-pointer walk skipped, restored from the CFI.",
	       st.leaf_fixups);
	metric_head(out, "bpfprof_map_entries", "gauge",
		    "Entries the last drain found in the BPF maps, and their capacity.");
	strbuf_addf(
		out,
		"bpfprof_map_entries{map=\"counts\"} %u\nbpfprof_map_entries{map=\"stacks\"} %u\n",
		st.map_counts_used, st.map_stacks_used);
	metric_head(out, "bpfprof_map_capacity", "gauge", "Entries per BPF map.");
	strbuf_addf(out,
		    "bpfprof_map_capacity{map=\"counts\"} %u\nbpfprof_map_capacity{map=\"stacks\"} "
		    "%u\n",
		    st.map_counts_cap, st.map_stacks_cap);
	if (st.cfi) {
		metric_head(out, "bpfprof_unwind_stops_total", "counter",
			    "User stack walks by how they ended, in the kernel (where=\"bpf\") or "
			    "for new-process snapshots in user space (where=\"user\").");
		for (int i = 1; i < PROF_UW__COUNT; i++) {
			strbuf_addf(
				out,
				"bpfprof_unwind_stops_total{where=\"bpf\",reason=\"%s\"} %llu\n",
				prof_uw_stop_name(i), (unsigned long long)st.unwind_stops[i]);
			if (i != PROF_UW_SNAPSHOT && i != PROF_UW_SNAPSHOT_LOST)
				strbuf_addf(
					out,
					"bpfprof_unwind_stops_total{where=\"user\",reason=\"%s\"} "
					"%llu\n",
					prof_uw_stop_name(i),
					(unsigned long long)st.unwind.snapshot_stops[i]);
		}
		metric_head(out, "bpfprof_unwind_frames_total", "counter",
			    "User frames unwound in the kernel, by method.");
		strbuf_addf(out,
			    "bpfprof_unwind_frames_total{method=\"cfi\"} %llu\n"
			    "bpfprof_unwind_frames_total{method=\"frame_pointer\"} %llu\n"
			    "bpfprof_unwind_frames_total{method=\"signal\"} %llu\n",
			    (unsigned long long)st.bpf[PROF_STAT_UW_CFI_FRAMES],
			    (unsigned long long)st.bpf[PROF_STAT_UW_FP_FRAMES],
			    (unsigned long long)st.bpf[PROF_STAT_UW_SIGNAL_FRAMES]);
		metric(out, "bpfprof_unwind_tables", "gauge",
		       "Files whose unwind rows are loaded in the kernel.", st.unwind.tables);
		metric_head(out, "bpfprof_unwind_rows", "gauge",
			    "Unwind rows (8 bytes each) in use, and the capacity (--unwind-rows).");
		strbuf_addf(out,
			    "bpfprof_unwind_rows{state=\"used\"} %llu\n"
			    "bpfprof_unwind_rows{state=\"capacity\"} %llu\n",
			    (unsigned long long)st.unwind.rows_used,
			    (unsigned long long)st.unwind.rows_capacity);
		metric(out, "bpfprof_unwind_files_without_cfi_total", "counter",
		       "Files unwound with frame pointers: no usable CFI, or no room for it.",
		       st.unwind.files_without_cfi);
		metric(out, "bpfprof_unwind_tables_evicted_total", "counter",
		       "Unwind tables unloaded to make room (rebuilt when needed again).",
		       st.unwind.tables_evicted);
		metric(out, "bpfprof_unwind_row_copy_bytes", "gauge",
		       "Unwind rows kept in memory for finishing new processes' stacks "
		       "(2 MiB at most, a minute unused at most).",
		       st.unwind.row_copy_bytes);
		metric(out, "bpfprof_unwind_table_build_seconds_total", "counter",
		       "Time spent turning .eh_frame into rows.", (double)st.unwind.build_ns / 1e9);
	}
	metric_head(out, "bpfprof_frames_total", "counter", "Frames symbolized, by outcome.");
	strbuf_addf(out,
		    "bpfprof_frames_total{result=\"dwarf\"} %llu\n"
		    "bpfprof_frames_total{result=\"symbol\"} %llu\n"
		    "bpfprof_frames_total{result=\"unknown\"} %llu\n",
		    (unsigned long long)st.frames_dwarf,
		    (unsigned long long)(st.frames - st.frames_dwarf - st.frames_unknown),
		    (unsigned long long)st.frames_unknown);
	metric(out, "bpfprof_drains_total", "counter", "Drains of the kernel maps.", st.drains);
	metric(out, "bpfprof_address_spaces", "gauge", "Process address spaces tracked.",
	       st.procs.aspaces);
	metric_head(out, "bpfprof_symbol_cache_files", "gauge",
		    "ELF files in the symbolizer's cache, and those with a symbol table loaded.");
	strbuf_addf(out,
		    "bpfprof_symbol_cache_files{state=\"cached\"} %llu\n"
		    "bpfprof_symbol_cache_files{state=\"loaded\"} %llu\n"
		    "bpfprof_symbol_cache_files{state=\"dwarf\"} %llu\n",
		    (unsigned long long)y->dsos, (unsigned long long)y->dsos_loaded,
		    (unsigned long long)y->dwarf_loaded);
	metric_head(out, "bpfprof_symbol_cache_bytes", "gauge",
		    "Memory held by symbol tables and (estimated) DWARF sessions.");
	strbuf_addf(out,
		    "bpfprof_symbol_cache_bytes{kind=\"symtab\"} %llu\n"
		    "bpfprof_symbol_cache_bytes{kind=\"dwarf\"} %llu\n",
		    (unsigned long long)y->bytes, (unsigned long long)y->dwarf_bytes);
	metric_head(out, "bpfprof_symbol_lookups_total", "counter",
		    "Symbolizer lookups and hits (hit rate = hits / lookups), by source.");
	strbuf_addf(out,
		    "bpfprof_symbol_lookups_total{source=\"symtab\"} %llu\n"
		    "bpfprof_symbol_lookups_total{source=\"dwarf\"} %llu\n",
		    (unsigned long long)y->lookups, (unsigned long long)y->dwarf_lookups);
	metric_head(out, "bpfprof_symbol_hits_total", "counter",
		    "Symbolizer lookups that found a name, by source.");
	strbuf_addf(out,
		    "bpfprof_symbol_hits_total{source=\"symtab\"} %llu\n"
		    "bpfprof_symbol_hits_total{source=\"dwarf\"} %llu\n",
		    (unsigned long long)y->hits, (unsigned long long)y->dwarf_hits);
	metric(out, "bpfprof_dwarf_over_budget_total", "counter",
	       "DWARF sessions not opened because they did not fit --dwarf-memory.",
	       y->dwarf_over_budget);
	metric(out, "bpfprof_symbol_cache_expired_total", "counter",
	       "Cached files freed after no process had mapped them for a while.", y->idle_expired);
	metric(out, "bpfprof_dwarf_expired_total", "counter",
	       "DWARF sessions of files in use closed after no sample needed them for a while.",
	       y->dwarf_expired);
	metric(out, "bpfprof_kernel_symbols", "gauge", "Kernel text symbols loaded from kallsyms.",
	       st.kallsyms_symbols);
}

/* The agent's state shared by its callbacks. */
struct agent {
	struct prof_collector *c;
	struct prof_store *store; /* NULL with --no-store or when it could not open */
	struct prof_push *push; /* NULL without --push-url */
};

/* Every interval goes to the store and to the pusher (on the collector thread). */
static void agent_interval(void *ctx, struct prof_profile *p)
{
	struct agent *a = ctx;
	int err = a->store ? prof_store__append(a->store, p) : -ENOENT;

	if (err && err != -ENOSPC && err != -ENOENT) /* the store logs ENOSPC itself */
		pr_warn("store: appending an interval: %s", strerror(-err));
	/* Stored: the pusher reads it back when it sends it; else it keeps it encoded. */
	if (a->push)
		prof_push__submit(a->push, p, /*in_store=*/err == 0);
	prof_profile__free(p);
}

static int agent_query(void *ctx, int64_t start_ns, int64_t end_ns, struct prof_profile **out)
{
	struct agent *a = ctx;

	if (!a->store)
		return -ENOTSUP;
	return prof_store__query(a->store, start_ns, end_ns, NULL, out);
}

static int agent_series(void *ctx, int64_t start_ns, int64_t end_ns, const struct prof_filter *f,
			struct api_series *out)
{
	struct agent *a = ctx;
	struct prof_store_filter sf = {0};

	if (!a->store)
		return -ENOTSUP;
	if (f)
		sf = (struct prof_store_filter){
			.pid = f->pid, .comm = f->comm, .container = f->container};
	return prof_store__query_intervals(a->store, start_ns, end_ns, &sf, api_series__add, out);
}

static int agent_window2(void *ctx, unsigned int seconds, struct prof_profile **out)
{
	return prof_collector__window(((struct agent *)ctx)->c, seconds, out);
}

static void agent_status2(void *ctx, struct strbuf *out)
{
	struct agent *a = ctx;

	agent_status(a->c, out);
	if (a->push)
		prof_push__status(a->push, out);
}

static void agent_metrics2(void *ctx, struct strbuf *out)
{
	struct agent *a = ctx;
	struct prof_store_stats ss;

	agent_metrics(a->c, out);
	if (a->push)
		prof_push__metrics(a->push, out);
	if (!a->store)
		return;
	prof_store__stats(a->store, &ss);
	metric(out, "bpfprof_store_bytes", "gauge", "Bytes of the history store on disk.",
	       ss.bytes);
	metric(out, "bpfprof_store_segments", "gauge", "Segment files of the history store.",
	       ss.segments);
	metric(out, "bpfprof_store_intervals", "gauge", "Intervals readable in the store.",
	       ss.records);
	metric(out, "bpfprof_store_oldest_timestamp_seconds", "gauge",
	       "Start of the oldest stored interval (Unix time).", ss.oldest_ns / 1e9);
	metric(out, "bpfprof_store_write_errors_total", "counter",
	       "Intervals that could not be written.", ss.write_errors);
	metric(out, "bpfprof_store_dropped_for_space_total", "counter",
	       "Intervals not written because free space was under the floor.",
	       ss.dropped_for_space);
	metric(out, "bpfprof_store_corrupt_records_total", "counter",
	       "Stored intervals found corrupt and skipped.", ss.corrupt_records);
	metric(out, "bpfprof_store_table_bytes", "gauge",
	       "Memory of the tables of the segment being written.", ss.table_bytes);
}

/* free() for a string that held a secret. NULL is a no-op. */
static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

static int cmd_agent(int argc, char **argv)
{
	static const struct option opts[] = {
		{"http-address", required_argument, NULL, 'a'},
		{"http-token-file", required_argument, NULL, 'T'},
		{"freq", required_argument, NULL, 'F'},
		{"no-kernel", no_argument, NULL, 'K'},
		{"max-stacks", required_argument, NULL, 'S'},
		{"max-counts", required_argument, NULL, 'C'},
		{"dwarf-memory", required_argument, NULL, 'M'},
		{"symbol-cache", required_argument, NULL, 'Y'},
		{"unwind", required_argument, NULL, OPT_UNWIND},
		{"unwind-rows", required_argument, NULL, OPT_UNWIND_ROWS},
		{"store", required_argument, NULL, 's'},
		{"no-store", no_argument, NULL, 'N'},
		{"interval", required_argument, NULL, 'i'},
		{"retention", required_argument, NULL, 'r'},
		{"store-max-mb", required_argument, NULL, 'B'},
		{"push-url", required_argument, NULL, 'U'},
		{"service-name", required_argument, NULL, 'n'},
		{"label", required_argument, NULL, 'L'},
		{"push-queue", required_argument, NULL, 'Q'},
		{"push-tenant", required_argument, NULL, OPT_PUSH_TENANT},
		{"push-auth-file", required_argument, NULL, OPT_PUSH_AUTH_FILE},
		{"verbose", no_argument, NULL, 'v'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	struct prof_collector_opts co = {
		.freq = 99,
		.dwarf_budget = 16ULL << 20,
		.idle_budget = 16ULL << 20,
		.idle_ttl_ms = 120000,
	};
	const char *address = "127.0.0.1:7071", *token_file = NULL, *auth_file = NULL;
	struct srv_opts sopts = {0};
	char *token = NULL, *auth = NULL;
	struct prof_push_opts po = {0};
	const char *labels[32]; /* --label values point into argv */
	char why[128];
	struct prof_store_opts so = {.dir = "/var/lib/bpfprof"};
	bool no_store = false, store_explicit = false;
	struct agent ag = {0};
	struct sockaddr_storage ss;
	unsigned int sslen;
	struct srv_source src;
	struct prof_collector *c;
	struct srv *srv;
	unsigned long v;
	sigset_t sigs;
	siginfo_t si;
	int opt;

	while ((opt = getopt_long(argc, argv, "F:vh", opts, NULL)) != -1) {
		int err = collector_option("agent", opt, optarg, &co);

		if (err >= 0) {
			if (err)
				return err;
			continue;
		}
		switch (opt) {
		case 'a':
			address = optarg;
			break;
		case 'T':
			token_file = optarg;
			break;
		case 'Y':
			if (parse_dwarf_memory(optarg, &co.idle_budget))
				return bad_option("agent", "--symbol-cache in MB", optarg);
			break;
		case 's':
			so.dir = optarg;
			store_explicit = true;
			break;
		case 'N':
			no_store = true;
			break;
		case 'i':
			if (parse_uint(optarg, 1, 3600, &v))
				return bad_option("agent", "--interval in seconds (1..3600)",
						  optarg);
			co.interval_ms = v * 1000;
			break;
		case 'r':
			if (parse_uint(optarg, 1, 24 * 365, &v))
				return bad_option("agent", "--retention in hours", optarg);
			so.max_age_ns = (uint64_t)v * 3600 * 1000000000ULL;
			break;
		case 'B':
			if (parse_uint(optarg, 1, 1UL << 24, &v))
				return bad_option("agent", "--store-max-mb", optarg);
			so.max_bytes = (uint64_t)v << 20;
			break;
		case 'U':
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
				return bad_option("agent", "--push-url (want http:// or https://)",
						  optarg);
			po.url = optarg;
			break;
		case 'n':
			if (prof_push_check_service_name(optarg))
				return bad_option("agent",
						  "--service-name (letters, digits, _ . - /)",
						  optarg);
			po.service_name = optarg;
			break;
		case 'L':
			if (prof_push_check_label(optarg, why, sizeof(why))) {
				fprintf(stderr, "bpfprof agent: invalid --label '%s': %s\n", optarg,
					why);
				return 2;
			}
			for (size_t i = 0; i < po.nlabels; i++)
				if (!strncmp(labels[i], optarg, strchr(optarg, '=') - optarg + 1)) {
					fprintf(stderr, "bpfprof agent: --label '%s' given twice\n",
						optarg);
					return 2;
				}
			if (po.nlabels == ARRAY_SIZE(labels)) {
				fprintf(stderr, "bpfprof agent: at most %zu --label options\n",
					ARRAY_SIZE(labels));
				return 2;
			}
			labels[po.nlabels++] = optarg;
			break;
		case 'Q':
			if (parse_uint(optarg, 1, 1000000, &v))
				return bad_option("agent", "--push-queue (1..1000000)", optarg);
			po.queue_max = v;
			break;
		case OPT_PUSH_TENANT:
			if (prof_push_check_tenant(optarg))
				return bad_option("agent",
						  "--push-tenant (1 to 150 letters, digits and "
						  "! - _ . * ' ( ))",
						  optarg);
			po.tenant = optarg;
			break;
		case OPT_PUSH_AUTH_FILE:
			auth_file = optarg;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			fputs(usage_agent, stdout);
			return 0;
		default:
			fputs(usage_agent, stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "bpfprof agent: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (!po.url && (po.service_name || po.nlabels || po.queue_max || po.tenant || auth_file)) {
		fprintf(stderr,
			"bpfprof agent: --service-name, --label, --push-queue, --push-tenant "
			"and --push-auth-file need --push-url\n");
		return 2;
	}
	if (auth_file && prof_push_url_has_credentials(po.url)) {
		fprintf(stderr, "bpfprof agent: --push-auth-file and user:password@ in --push-url: "
				"give the credentials one way (the file keeps them out of ps)\n");
		return 2;
	}
	if (srv_parse_address(address, &ss, &sslen))
		return bad_option("agent", "--http-address (want HOST:PORT)", address);
	if (token_file) {
		const char *why;

		if (srv_read_token_file(token_file, &token, &why)) {
			fprintf(stderr, "bpfprof agent: --http-token-file %s: %s\n", token_file,
				why);
			return 1;
		}
		sopts.token = token;
	}
	if (auth_file) {
		const char *why;

		if (prof_push_read_auth_file(auth_file, &auth, &why)) {
			fprintf(stderr, "bpfprof agent: --push-auth-file %s: %s\n", auth_file, why);
			free(token);
			return 1;
		}
		po.auth = auth;
	}
	if (check_privileges()) {
		free_secret(auth);
		free(token);
		return 1;
	}

	if (!no_store) {
		ag.store = prof_store__open(&so);
		if (!ag.store && store_explicit) {
			pr_err("cannot open the store %s: %s", so.dir, strerror(errno));
			free_secret(auth);
			free(token);
			return 1;
		}
		if (!ag.store)
			pr_warn("no history: cannot open %s (%s); use --store DIR or --no-store",
				so.dir, strerror(errno));
	}
	if (!co.interval_ms)
		co.interval_ms = 10000;
	co.interval_fn = agent_interval;
	co.interval_ctx = &ag;

	block_signals(&sigs);
	if (po.url) {
		po.labels = labels;
		po.sample_rate = co.freq;
		po.store = ag.store;
		po.cursor_dir = ag.store ? so.dir : NULL; /* no store, nothing to resume from */
		ag.push = prof_push__start(&po);
		free_secret(auth); /* libcurl has its own copy */
		po.auth = auth = NULL;
		if (!ag.push) {
			pr_err("cannot start pushing: %s", strerror(errno));
			prof_store__close(ag.store);
			free(token);
			return 1;
		}
	}
	c = prof_collector__start(&co);
	if (!c) {
		prof_push__close(ag.push, 0);
		prof_store__close(ag.store);
		free(token);
		return 1;
	}
	ag.c = c;
	malloc_trim(0); /* libbpf's parsed kernel BTF is freed by now */
	src = (struct srv_source){.window = agent_window2,
				  .status = agent_status2,
				  .metrics = agent_metrics2,
				  .query = agent_query,
				  .series = agent_series,
				  .ctx = &ag};
	srv = srv__start_opts(address, &src, &sopts);
	free(token); /* the server keeps its own copy */
	if (!srv) {
		pr_err("cannot listen on %s: %s", address, strerror(errno));
		prof_collector__free(c);
		prof_push__close(ag.push, 0);
		prof_store__close(ag.store);
		return 1;
	}
	{
		struct prof_collector_stats st;

		prof_collector__stats(c, &st);
		fprintf(stderr, "bpfprof: agent sampling %d CPUs at %u Hz, serving http://%s/\n",
			st.ncpus, co.freq, address);
	}
	while (sigwaitinfo(&sigs, &si) < 0 && errno == EINTR)
		;
	fprintf(stderr, "bpfprof: %s, stopping\n", si.si_signo == SIGINT ? "SIGINT" : "SIGTERM");
	/* Open windows complete with what they have, then handlers can return. */
	prof_collector__stop(c);
	srv__stop(srv);
	prof_collector__free(c); /* the last interval goes to the store here */
	prof_push__close(ag.push, 3000); /* ... and gets 3 s to reach Pyroscope */
	prof_store__close(ag.store);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	/*
	 * glibc gives every thread that allocates its own 64 MiB arena; the HTTP
	 * threads only build responses, so two arenas keep RSS flat without
	 * contention that matters.
	 */
	mallopt(M_ARENA_MAX, 2);
	/*
	 * A fixed mmap threshold: glibc raises it to the size of every large
	 * block freed (up to 32 MiB), after which unwind row arrays, decoded
	 * store segments and pprof buffers come from the arenas, and the small
	 * blocks between them keep freed pages from going back.
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);

	if (!cmd || !strcmp(cmd, "-h") || !strcmp(cmd, "--help")) {
		fputs(usage_main, cmd ? stdout : stderr);
		return cmd ? 0 : 2;
	}
	if (!strcmp(cmd, "help")) {
		if (argc > 2 && !strcmp(argv[2], "record"))
			fputs(usage_record, stdout);
		else if (argc > 2 && !strcmp(argv[2], "agent"))
			fputs(usage_agent, stdout);
		else if (argc > 2 && !strcmp(argv[2], "symbolize")) {
			char *hargv[] = {"symbolize", "--help", NULL};

			return cmd_symbolize(2, hargv);
		} else
			fputs(usage_main, stdout);
		return 0;
	}
	if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
		printf("bpfprof %s\n", BPFPROF_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "record"))
		return cmd_record(argc - 1, argv + 1);
	if (!strcmp(cmd, "agent"))
		return cmd_agent(argc - 1, argv + 1);
	if (!strcmp(cmd, "symbolize"))
		return cmd_symbolize(argc - 1, argv + 1);
	fprintf(stderr, "bpfprof: unknown command '%s'\n\n%s", cmd, usage_main);
	return 2;
}
