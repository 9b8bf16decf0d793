// SPDX-License-Identifier: MIT
/*
 * tests/fuzz/fuzz_elf.c — libFuzzer target for everything in symbolizer/
 * that reads files from the outside world.
 *
 * Each input is written to a memfd and read, as the agent would read a
 * mapped binary, through /proc/self/fd/N by:
 *   - the ELF path: sym_dsos__get_path, build-id, offset_to_vaddr,
 *     sym_dso__resolve, sym_dso__cfa and sym_dso__frames (DWARF) at a set
 *     of file offsets spread over the input plus a few the input chooses;
 *   - the text parsers: a JIT perf map (sym_perfmap, with a refresh after
 *     the file grows), /proc/PID/maps (sym_procmaps__parse via fmemopen)
 *     and /proc/kallsyms (sym_kallsyms__load).
 * Nothing is asserted besides "no crash, no leak, no sanitizer report, no
 * hang": every answer from a hostile file is acceptable.
 *
 *   make fuzz FUZZ_SECONDS=600
 *   build-fuzz/fuzz_elf CRASH_FILE        (replays one input)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "symbolizer/symbolizer.h"

/* File offsets tried per input: spread evenly, plus the ones the input names. */
#define SPREAD 16
#define CHOSEN 4

static int memfd_with(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC);

	if (fd < 0)
		abort(); /* the harness itself is broken */
	while (size) {
		ssize_t n = write(fd, data, size);

		if (n <= 0)
			abort();
		data += n;
		size -= (size_t)n;
	}
	return fd;
}

static void probe(struct sym_dso *d, uint64_t off)
{
	struct sym_frame frames[16];
	struct sym_result r;
	enum sym_fail why;
	uint64_t vaddr;
	int64_t cfa_off;
	int reg, n;

	if (!sym_dso__offset_to_vaddr(d, off, &vaddr))
		(void)sym_dso__cfa(d, vaddr, &reg, &cfa_off);
	(void)sym_dso__resolve(d, off, &r, &why);
	n = sym_dso__frames(d, off, frames, (int)(sizeof(frames) / sizeof(frames[0])));
	/* Touch every string handed out: a dangling pointer shows up here under ASan. */
	for (int i = 0; i < n; i++) {
		if (frames[i].function)
			(void)strlen(frames[i].function);
		if (frames[i].file)
			(void)strlen(frames[i].file);
	}
}

static void fuzz_dso(const char *path, const uint8_t *data, size_t size)
{
	/* No separate debug files from this machine: the input alone decides. */
	static const char *const roots[] = {"/nonexistent/bpfprof-fuzz-debug"};
	struct sym_dsos *c = sym_dsos__new();
	struct sym_dso *d;
	const char *bid;

	if (!c)
		abort();
	sym_dsos__set_debug_roots(c, roots, 1);
	d = sym_dsos__get_path(c, path);
	if (d) {
		bid = sym_dso__build_id(d);
		if (bid)
			(void)strlen(bid);
		(void)sym_dso__has_lines(d);
		for (int i = 0; i <= SPREAD; i++)
			probe(d, size / SPREAD * (uint64_t)i);
		/* The last bytes of the input, read as offsets: lets mutations aim. */
		for (int i = 0; i < CHOSEN && size >= 4 * (size_t)(i + 1); i++) {
			uint32_t off;

			memcpy(&off, data + size - 4 * (size_t)(i + 1), sizeof(off));
			probe(d, off);
		}
		probe(d, UINT64_MAX);
		sym_dso__put(d);
	}
	sym_dsos__free(c);
}

static void fuzz_perfmap(const char *path, int fd, const uint8_t *data, size_t size)
{
	struct sym_perfmap *m = sym_perfmap__load(path);

	if (!m)
		return;
	/* The file grows by its own second half: refresh reads only what was appended. */
	if (write(fd, data + size / 2, size - size / 2) > 0)
		(void)sym_perfmap__refresh(m);
	for (size_t i = 0; i + 8 <= size && i < 64; i += 8) {
		uint64_t addr, start;
		const char *name;

		memcpy(&addr, data + i, sizeof(addr));
		name = sym_perfmap__lookup(m, addr, &start);
		if (name)
			(void)strlen(name);
	}
	sym_perfmap__free(m);
}

static void fuzz_text(const char *path, const uint8_t *data, size_t size)
{
	struct sym_map_entry *e;
	struct sym_kallsyms *k;
	size_t n, nbad;
	FILE *f;

	f = size ? fmemopen((void *)data, size, "r") : NULL;
	if (f) {
		if (!sym_procmaps__parse(f, &e, &n, &nbad))
			sym_procmaps__free(e, n);
		fclose(f);
	}
	k = sym_kallsyms__load(path, &nbad);
	if (k) {
		for (size_t i = 0; i + 8 <= size && i < 64; i += 8) {
			uint64_t addr;

			memcpy(&addr, data + i, sizeof(addr));
			(void)sym_kallsyms__find(k, addr);
		}
		sym_kallsyms__free(k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd;

	log_level = -1; /* hostile files are expected: no log lines */
	fd = memfd_with(data, size);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	fuzz_dso(path, data, size);
	fuzz_text(path, data, size);
	fuzz_perfmap(path, fd, data, size); /* last: it appends to the file */
	close(fd);
	return 0;
}
