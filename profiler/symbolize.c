// SPDX-License-Identifier: MIT
/*
 * `bpfprof symbolize`: addresses to function, file:line and inline chains,
 * with the same symbolizer the profiler uses, in an addr2line-compatible
 * layout (one address after another; with -f a function line before each
 * file:line line; with -i one such pair per inlined frame, innermost first;
 * "??" and "??:0" for what is unknown).
 *
 *   bpfprof symbolize -e FILE [-a] [-f] [-i] [-C] [ADDR...]  ELF virtual addresses
 *   bpfprof symbolize -p PID  [-a] [-f] [-i] [-C] [ADDR...]  addresses in a live process
 *
 * Without ADDR arguments, addresses are read from standard input, one per
 * line (or separated by spaces), and each answer is flushed, so that the
 * command can serve as a co-process, as addr2line can.
 */
#include "symbolize.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "../symbolizer/symbolizer.h"

#define MAX_INLINE 32

static const char usage[] =
	"Usage: bpfprof symbolize -e FILE [-a] [-f] [-i] [-C] [ADDR...]\n"
	"       bpfprof symbolize -p PID  [-a] [-f] [-i] [-C] [ADDR...]\n"
	"\n"
	"Prints the source location of each address, as addr2line does: with -e the\n"
	"addresses are ELF virtual addresses in FILE, with -p absolute addresses in\n"
	"the live process PID. Without ADDR arguments they are read from standard\n"
	"input, one per line, and each answer is flushed at once.\n"
	"Names and lines come from DWARF (the file's own, or a separate debug file\n"
	"under /usr/lib/debug/.build-id or through .gnu_debuglink), else from the ELF\n"
	"symbol tables.\n"
	"\n"
	"Options:\n"
	"  -e, --exe FILE       the ELF file the addresses belong to\n"
	"  -p, --pid PID        a running process the addresses belong to\n"
	"  -a, --addresses      print each address before its answer\n"
	"  -f, --functions      print the function name before each location\n"
	"  -i, --inlines        print every inlined frame, innermost first\n"
	"  -C, --demangle       demangle C++ and Rust names\n"
	"      --debug-root DIR where separate debug files are (default /usr/lib/debug;\n"
	"                       may be repeated)\n"
	"  -h, --help           this help\n";

/* The ELF virtual address -> file offset map of an executable (PT_LOAD). */
struct loads {
	GElf_Phdr *ph;
	size_t n;
};

static int read_loads(const char *path, struct loads *out)
{
	Elf *elf = NULL;
	struct stat st = {0};
	size_t phnum;
	int fd, err = 0;

	elf_version(EV_CURRENT);
	/* O_NONBLOCK: a FIFO given as FILE must not hang us; only regular files are read. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &phnum)) {
		err = -ENOEXEC;
		goto out;
	}
	out->ph = xcalloc(phnum ? phnum : 1, sizeof(*out->ph));
	for (size_t i = 0; i < phnum; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD)
			out->ph[out->n++] = ph;
	}
out:
	elf_end(elf);
	close(fd);
	return err;
}

static int vaddr_to_offset(const struct loads *l, uint64_t vaddr, uint64_t *off)
{
	for (size_t i = 0; i < l->n; i++) {
		const GElf_Phdr *ph = &l->ph[i];

		if (vaddr >= ph->p_vaddr && vaddr < ph->p_vaddr + ph->p_memsz) {
			*off = vaddr - ph->p_vaddr + ph->p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

struct sym_ctx {
	struct sym_dsos *dsos;
	struct sym_vdso *vdso; /* -p: [vdso] addresses */
	struct sym_demangler *dm;
	bool addresses, functions, inlines, demangle;
	/* -e */
	struct sym_dso *dso;
	struct loads loads;
	/* -p */
	int pid;
	struct sym_map_entry *maps;
	size_t nmaps;
	struct sym_dso **map_dsos; /* opened on first use, one per maps entry */
};

static const char *show_name(struct sym_ctx *x, const char *name)
{
	if (!name)
		return "??";
	return x->demangle ? sym_demangle(x->dm, name) : name;
}

/* The dso and file offset of @addr; NULL when nothing maps it. */
static struct sym_dso *locate(struct sym_ctx *x, uint64_t addr, uint64_t *off)
{
	if (x->dso)
		return vaddr_to_offset(&x->loads, addr, off) ? NULL : x->dso;
	for (size_t i = 0; i < x->nmaps; i++) {
		struct sym_map_entry *m = &x->maps[i];

		if (addr < m->start || addr >= m->end || m->path[0] != '/')
			continue;
		if (!x->map_dsos[i])
			x->map_dsos[i] = sym_dsos__get_mapped(x->dsos, x->pid, m);
		*off = addr - m->start + m->pgoff;
		return x->map_dsos[i];
	}
	return NULL;
}

static void print_location(const char *file, int line)
{
	if (file && line > 0)
		printf("%s:%d\n", file, line);
	else
		printf("%s:0\n", file ? file : "??");
}

/* -p: the [vdso] symbol at @addr, or NULL. */
static const char *vdso_name(struct sym_ctx *x, uint64_t addr)
{
	for (size_t i = 0; x->vdso && i < x->nmaps; i++) {
		const struct sym_map_entry *m = &x->maps[i];

		if (addr >= m->start && addr < m->end && !strcmp(m->path, "[vdso]") &&
		    m->end - m->start == ((sym_vdso__size(x->vdso) + 4095) & ~4095ULL))
			return sym_vdso__resolve(x->vdso, addr - m->start, NULL);
	}
	return NULL;
}

static void answer(struct sym_ctx *x, uint64_t addr)
{
	struct sym_frame fr[MAX_INLINE];
	struct sym_result r;
	struct sym_dso *d;
	uint64_t off = 0;
	int n = -ENOENT;

	if (x->addresses)
		printf("0x%016" PRIx64 "\n", addr);
	d = locate(x, addr, &off);
	if (d)
		n = sym_dso__frames(d, off, fr, MAX_INLINE);
	if (n > 0) {
		int last = x->inlines ? n : 1;

		for (int i = 0; i < last; i++) {
			if (x->functions)
				printf("%s\n", show_name(x, fr[i].function));
			print_location(fr[i].file, fr[i].line);
		}
		return;
	}
	/* No DWARF here: the symbol table (or the vDSO's) still names the function. */
	if (x->functions) {
		const char *name = d && sym_dso__resolve(d, off, &r, NULL) == 0 ? r.name : NULL;

		if (!name && !d)
			name = vdso_name(x, addr);
		printf("%s\n", show_name(x, name));
	}
	printf("??:0\n");
}

static int parse_addr(const char *s, uint64_t *out)
{
	char *end;

	if (*s == '-' || *s == '+')
		return -EINVAL; /* strtoull would wrap "-5" to 0xff...fb */
	errno = 0;
	*out = strtoull(s, &end, 16); /* addr2line: hex, with or without 0x */
	return errno || end == s || (*end && *end != '\n' && *end != ' ') ? -EINVAL : 0;
}

int cmd_symbolize(int argc, char **argv)
{
	static const struct option opts[] = {
		{"exe", required_argument, NULL, 'e'},
		{"pid", required_argument, NULL, 'p'},
		{"addresses", no_argument, NULL, 'a'},
		{"functions", no_argument, NULL, 'f'},
		{"inlines", no_argument, NULL, 'i'},
		{"demangle", optional_argument, NULL, 'C'},
		{"debug-root", required_argument, NULL, 'D'},
		{"help", no_argument, NULL, 'h'},
		{},
	};
	const char *exe = NULL, *roots[8];
	struct sym_ctx x = {};
	size_t nroots = 0;
	int opt, ret = 1;

	while ((opt = getopt_long(argc, argv, "e:p:afiCh", opts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			exe = optarg;
			break;
		case 'p': {
			char *end;
			long v = strtol(optarg, &end, 10);

			x.pid = *optarg >= '0' && *optarg <= '9' && !*end && v > 0 && v <= INT_MAX
					? (int)v
					: 0;
			if (x.pid <= 0) {
				fprintf(stderr, "bpfprof symbolize: invalid pid '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'a':
			x.addresses = true;
			break;
		case 'f':
			x.functions = true;
			break;
		case 'i':
			x.inlines = true;
			break;
		case 'C':
			x.demangle = true;
			break;
		case 'D':
			if (nroots == ARRAY_SIZE(roots)) {
				fprintf(stderr, "bpfprof symbolize: at most %zu --debug-root\n",
					ARRAY_SIZE(roots));
				return 2;
			}
			roots[nroots++] = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (!exe == !x.pid) {
		fprintf(stderr, "bpfprof symbolize: give exactly one of -e FILE and -p PID\n");
		return 2;
	}
	x.dsos = sym_dsos__new();
	x.dm = sym_demangler__new(0);
	if (nroots)
		sym_dsos__set_debug_roots(x.dsos, roots, nroots);
	if (exe) {
		int err = read_loads(exe, &x.loads);

		x.dso = err ? NULL : sym_dsos__get_path(x.dsos, exe);
		if (!x.dso) {
			fprintf(stderr, "bpfprof symbolize: %s: %s\n", exe,
				strerror(err ? -err : errno));
			goto out;
		}
	} else {
		int err = sym_procmaps__read(x.pid, &x.maps, &x.nmaps);

		if (err) {
			fprintf(stderr, "bpfprof symbolize: process %d: %s\n", x.pid,
				strerror(-err));
			goto out;
		}
		x.map_dsos = xcalloc(x.nmaps ? x.nmaps : 1, sizeof(*x.map_dsos));
		x.vdso = sym_vdso__load_self();
	}

	ret = 0;
	if (optind < argc) {
		for (int i = optind; i < argc; i++) {
			uint64_t a;

			if (parse_addr(argv[i], &a)) {
				fprintf(stderr, "bpfprof symbolize: not an address: '%s'\n",
					argv[i]);
				ret = 1;
				continue;
			}
			answer(&x, a);
			sym_demangler__trim(x.dm);
		}
	} else {
		char *line = NULL;
		size_t cap = 0;

		while (getline(&line, &cap, stdin) > 0) {
			char *tok, *save;

			for (tok = strtok_r(line, " \t\r\n", &save); tok;
			     tok = strtok_r(NULL, " \t\r\n", &save)) {
				uint64_t a;

				if (parse_addr(tok, &a)) {
					fprintf(stderr, "bpfprof symbolize: not an address: '%s'\n",
						tok);
					ret = 1;
					continue;
				}
				answer(&x, a);
				sym_demangler__trim(x.dm); /* this answer is printed */
			}
			fflush(stdout);
		}
		free(line);
	}
out:
	for (size_t i = 0; x.map_dsos && i < x.nmaps; i++)
		sym_dso__put(x.map_dsos[i]);
	free(x.map_dsos);
	sym_procmaps__free(x.maps, x.nmaps);
	free(x.loads.ph);
	sym_dso__put(x.dso);
	sym_vdso__free(x.vdso);
	sym_demangler__free(x.dm);
	sym_dsos__free(x.dsos);
	return ret;
}
