# bpfprof — continuous whole-system CPU profiler.
#
#   make            build build/bpfprof
#   sudo make run   install missing packages, build, start the agent on 127.0.0.1:7071
#   sudo make test  install missing packages, build, run unit and end-to-end tests
#   make bench      bpfprof against perf (overhead; and --call-graph dwarf on a
#                   workload without frame pointers) and against llvm-symbolizer,
#                   addr2line and eu-addr2line (symbolization), side by side, and
#                   the agent under process churn for 10 minutes (root)
#   make install    install to $(PREFIX)/bin
#   make sanitize   unit tests under ASan/UBSan
#   make fuzz       libFuzzer on the symbolizer's file parsers (FUZZ_SECONDS=60)
#   make format / make lint
#
# All output goes to $(BUILD) (default build/); several builds may coexist
# (make BUILD=build-asan ...).

BUILD ?= build
PREFIX ?= /usr/local
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
HTTP_ADDRESS ?= 127.0.0.1:7071

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
PKGS := libbpf libelf libdw libmicrohttpd libprotobuf-c zlib libzstd jansson libcurl
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)

OPT ?= -O2
WARN := -Wall -Wextra -Werror -Wno-missing-field-initializers
CFLAGS ?= $(OPT) -g
override CFLAGS += $(WARN) -std=gnu11 -D_GNU_SOURCE -fno-omit-frame-pointer \
	-I. -I$(BUILD) -I$(BUILD)/proto $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS += $(EXTRA_LDFLAGS)
LDLIBS := $(PKG_LIBS) -liberty -lpthread -lm

# ---- sources ---------------------------------------------------------------

LIB_SRCS := $(wildcard common/*.c symbolizer/*.c server/*.c) \
	$(filter-out profiler/main.c,$(wildcard profiler/*.c))
PROTO_C := $(BUILD)/proto/pprof.pb-c.c
LIB_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS)) $(BUILD)/obj/proto/pprof.pb-c.o
BPF_SRCS := $(wildcard bpf/*.bpf.c)
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
VMLINUX_H := $(BUILD)/vmlinux.h

UNIT_SRCS := $(wildcard tests/unit/*.c)
E2E_SRCS := $(wildcard tests/e2e/*.c)
TEST_COMMON_SRCS := $(wildcard tests/common/*.c)
TEST_COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_COMMON_SRCS))

.PHONY: all deps run test unit e2e bench install install-service uninstall clean sanitize format \
	lint fixtures
.DEFAULT_GOAL := all
.SECONDARY:

all: $(BUILD)/bpfprof

# ---- generated files -------------------------------------------------------

# vmlinux.h from the running kernel's BTF; the committed, minimal
# bpf/vmlinux_fallback.h is used where the kernel has no BTF.
$(VMLINUX_H):
	@mkdir -p $(@D)
	@if [ -r /sys/kernel/btf/vmlinux ] && command -v $(BPFTOOL) >/dev/null; then \
		echo "  GEN     $@ (from /sys/kernel/btf/vmlinux)"; \
		$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@; \
	else \
		echo "  GEN     $@ (fallback: no kernel BTF or bpftool)"; \
		cp bpf/vmlinux_fallback.h $@; \
	fi

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/*.h $(VMLINUX_H)
	@mkdir -p $(@D)
	@echo "  BPF     $@"
	@$(CLANG) -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -I$(BUILD) -Ibpf \
		-idirafter /usr/include/$(shell $(CC) -dumpmachine) \
		-Wall -Werror -c $< -o $@
	@llvm-strip -g $@ 2>/dev/null || true

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	@echo "  SKEL    $@"
	@$(BPFTOOL) gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

$(PROTO_C): profiler/pprof.proto
	@mkdir -p $(@D)
	@echo "  PROTO   $<"
	@protoc-c --proto_path=profiler --c_out=$(@D) $<

# ---- objects ---------------------------------------------------------------

$(BUILD)/obj/proto/%.o: $(BUILD)/proto/%.c
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -Wno-unused-parameter -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c $(SKELS) $(PROTO_C)
	@mkdir -p $(@D)
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libbpfprof.a: $(LIB_OBJS)
	@echo "  AR      $@"
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/bpfprof: $(BUILD)/obj/profiler/main.o $(BUILD)/libbpfprof.a
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- fixtures (built with known flags; see tests/fixtures/README.md) --------

FIX := $(BUILD)/fixtures
FIX_FP := -O2 -g -fno-omit-frame-pointer -mno-omit-leaf-frame-pointer -fno-inline \
	-fno-optimize-sibling-calls -fno-pie -no-pie
FIXTURES := $(FIX)/fpchains $(FIX)/elfsyms $(FIX)/elfsyms-stripped $(FIX)/burn \
	$(FIX)/inlines $(FIX)/inlines-dwarf4 $(FIX)/jitmap $(FIX)/libcfilib.so $(FIX)/cfichains \
	$(FIX)/cfichains-stripped $(FIX)/cfichains-lld

fixtures: $(FIXTURES)

$(FIX)/fpchains: tests/fixtures/fpchains.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_FP) -pthread -o $@ $<

$(FIX)/burn: tests/fixtures/burn.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_FP) -pthread -o $@ $<

$(FIX)/elfsyms: tests/fixtures/elfsyms.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) -O1 -g -fno-inline -Wl,--build-id=sha1 -o $@ $<

# Same program stripped of .symtab: only .dynsym (exported with -rdynamic) remains.
$(FIX)/elfsyms-stripped: tests/fixtures/elfsyms.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) -O1 -fno-inline -rdynamic -Wl,--build-id=sha1 -o $@ $< && strip --strip-all $@

# Always-inline helpers inside hot functions, with DWARF 5 and DWARF 4.
$(FIX)/inlines: tests/fixtures/inlines.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) -O2 -g -fno-omit-frame-pointer -Wl,--build-id=sha1 -o $@ $<

$(FIX)/inlines-dwarf4: tests/fixtures/inlines.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) -O2 -gdwarf-4 -fno-omit-frame-pointer -Wl,--build-id=sha1 -o $@ $<

# Runs hand-assembled code from an anonymous page and names it in /tmp/perf-PID.map.
$(FIX)/jitmap: tests/fixtures/jitmap.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_FP) -o $@ $<

# No frame pointers anywhere (issue 3): the CFI unwinder's fixtures. noipa in
# the sources keeps the chains as written; the library is found through
# rpath $ORIGIN; the true chains come from libunwind inside the program.
FIX_CFI := -O2 -g -fomit-frame-pointer -fno-optimize-sibling-calls -Wl,--build-id=sha1

$(FIX)/libcfilib.so: tests/fixtures/cfilib.c
	@mkdir -p $(@D)
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_CFI) -fPIC -shared -o $@ $<

$(FIX)/cfichains: tests/fixtures/cfichains.c $(FIX)/libcfilib.so
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_CFI) -pthread -o $@ $< -L$(FIX) -lcfilib -Wl,-rpath,'$$ORIGIN' -lunwind

# Same program without .symtab or any debug section (.debug_frame included):
# names from .dynsym (-rdynamic), unwinding from .eh_frame alone.
$(FIX)/cfichains-stripped: tests/fixtures/cfichains.c $(FIX)/libcfilib.so
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_CFI) -rdynamic -pthread -o $@ $< -L$(FIX) -lcfilib \
		-Wl,-rpath,'$$ORIGIN' -lunwind && strip --strip-all $@

# Linked with lld, which does not page-align segments in the file: the
# executable mapping starts in the page that ends the read-only segment.
$(FIX)/cfichains-lld: tests/fixtures/cfichains.c $(FIX)/libcfilib.so
	@echo "  FIXTURE $@"
	@$(CC) $(FIX_CFI) -fuse-ld=lld -pthread -o $@ $< -L$(FIX) -lcfilib \
		-Wl,-rpath,'$$ORIGIN' -lunwind

# ---- tests -----------------------------------------------------------------

$(BUILD)/tests/unit_tests: $(patsubst %.c,$(BUILD)/obj/%.o,$(UNIT_SRCS)) $(TEST_COMMON_OBJS) $(BUILD)/libbpfprof.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(BUILD)/tests/e2e_tests: $(patsubst %.c,$(BUILD)/obj/%.o,$(E2E_SRCS)) $(TEST_COMMON_OBJS) $(BUILD)/libbpfprof.a
	@mkdir -p $(@D)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

unit: $(BUILD)/tests/unit_tests $(BUILD)/bpfprof $(FIXTURES)
	@BPFPROF_BUILD=$(BUILD) tests/run.sh unit $(BUILD)/tests/unit_tests

e2e: $(BUILD)/bpfprof $(BUILD)/tests/e2e_tests $(FIXTURES)
	@BPFPROF_BUILD=$(BUILD) tests/run.sh e2e $(BUILD)/tests/e2e_tests

# `make test` installs what is missing, then runs both suites in a sub-make
# so that pkg-config sees the freshly installed packages.
test: deps
	@$(MAKE) --no-print-directory $(BUILD)/bpfprof $(BUILD)/tests/unit_tests \
		$(BUILD)/tests/e2e_tests fixtures
	@$(MAKE) --no-print-directory fuzz-regress
	@BPFPROF_BUILD=$(BUILD) tests/run.sh all $(BUILD)/tests/unit_tests $(BUILD)/tests/e2e_tests

# LeakSanitizer reports at exit of criterion's worker processes without
# failing the test, so any sanitizer report in the output fails the target.
sanitize:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
		EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
		EXTRA_LDFLAGS="-fsanitize=address,undefined" build-asan/tests/unit_tests \
		build-asan/bpfprof $(patsubst $(BUILD)/%,build-asan/%,$(FIXTURES))
	@LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 \
		BPFPROF_BUILD=build-asan tests/run.sh sanitize build-asan/tests/unit_tests 2>&1 | \
		tee build-asan/sanitize.log
	@! grep -E "Sanitizer|runtime error" build-asan/sanitize.log

# ---- fuzzing (libFuzzer, clang) ---------------------------------------------
# make fuzz [FUZZ_SECONDS=600]: the ELF/DWARF/perf-map/maps/kallsyms entry
# points, seeded with the fixtures, /bin/true and libc. Crashes go to
# build-fuzz/crashes/; fixed ones are kept in tests/fuzz/regressions/ and
# replayed by make fuzz-regress.

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_SRCS := $(wildcard symbolizer/*.c) common/util.c
FUZZ_CFLAGS := -g -O1 -fno-omit-frame-pointer $(WARN) -std=gnu11 -D_GNU_SOURCE -I. $(PKG_CFLAGS) \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_REGRESSIONS := $(wildcard tests/fuzz/regressions/*)
.PHONY: fuzz fuzz-regress

$(FUZZ_BUILD)/fuzz_elf: tests/fuzz/fuzz_elf.c $(FUZZ_SRCS) $(wildcard symbolizer/*.h) common/util.h
	@mkdir -p $(@D)
	@echo "  FUZZ    $@"
	@$(CLANG) $(FUZZ_CFLAGS) -o $@ tests/fuzz/fuzz_elf.c $(FUZZ_SRCS) $(PKG_LIBS) -liberty -lm

fuzz: $(FUZZ_BUILD)/fuzz_elf $(FIXTURES)
	@mkdir -p $(FUZZ_BUILD)/corpus $(FUZZ_BUILD)/crashes
	@cp $(FIXTURES) /bin/true $(FUZZ_BUILD)/corpus/
	@cp -L $$($(CC) -print-file-name=libc.so.6) $(FUZZ_BUILD)/corpus/libc.so.6
	@head -c 8192 /proc/self/maps > $(FUZZ_BUILD)/corpus/maps.txt
	@head -n 200 /proc/kallsyms > $(FUZZ_BUILD)/corpus/kallsyms.txt
	@printf '7f0000001000 40 LazyCompile:~main /app/a.js:1\n0x7f0000001020 0x10 Stub\n' \
		> $(FUZZ_BUILD)/corpus/perf.map
	@UBSAN_OPTIONS=print_stacktrace=1 $(FUZZ_BUILD)/fuzz_elf -max_total_time=$(FUZZ_SECONDS) \
		-fork=1 -ignore_crashes=0 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
		-artifact_prefix=$(FUZZ_BUILD)/crashes/ \
		$(FUZZ_BUILD)/corpus $(if $(FUZZ_REGRESSIONS),tests/fuzz/regressions)

fuzz-regress: $(FUZZ_BUILD)/fuzz_elf
	@$(if $(FUZZ_REGRESSIONS),$(FUZZ_BUILD)/fuzz_elf $(FUZZ_REGRESSIONS),echo "no fuzz regressions")

# ---- run, bench, install ---------------------------------------------------

deps:
	@scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory $(BUILD)/bpfprof
	@echo "bpfprof agent: http://$(HTTP_ADDRESS)/  (Ctrl-C to stop)"
	@$(BUILD)/bpfprof agent --http-address $(HTTP_ADDRESS)

bench: deps
	@$(MAKE) --no-print-directory $(BUILD)/bpfprof $(BUILD)/tests/unit_tests fixtures
	@BPFPROF_BUILD=$(BUILD) bench/run.sh
	@BPFPROF_BUILD=$(BUILD) bench/symbolize.sh
	@BPFPROF_BUILD=$(BUILD) bench/unwind.sh
	@BPFPROF_BUILD=$(BUILD) bench/agent.sh

install: $(BUILD)/bpfprof
	install -D -m 0755 $(BUILD)/bpfprof $(DESTDIR)$(PREFIX)/bin/bpfprof

# The systemd unit (deploy/bpfprof.service) and the README it points to.
install-service: install
	install -D -m 0644 deploy/bpfprof.service $(DESTDIR)/etc/systemd/system/bpfprof.service
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/bpfprof/README.md
	@echo "now: sudo systemctl daemon-reload && sudo systemctl enable --now bpfprof"

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/bpfprof $(DESTDIR)/etc/systemd/system/bpfprof.service
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/bpfprof

clean:
	rm -rf $(BUILD) build-asan $(FUZZ_BUILD)

FORMAT_SRCS = $(shell git ls-files '*.c' '*.h' | grep -v '^bpf/vmlinux')
format:
	clang-format -i $(FORMAT_SRCS)

lint:
	clang-format --dry-run --Werror $(FORMAT_SRCS)
	cppcheck --quiet --error-exitcode=1 --enable=warning,portability \
		--suppress=missingIncludeSystem -I. common symbolizer profiler server
