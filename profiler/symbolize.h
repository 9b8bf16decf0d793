/* SPDX-License-Identifier: MIT */
/* profiler/symbolize.h — the `bpfprof symbolize` subcommand (see symbolize.c). */
#ifndef BPFPROF_SYMBOLIZE_H
#define BPFPROF_SYMBOLIZE_H

/* Runs `bpfprof symbolize` with argv[0] == "symbolize". Returns the exit code. */
int cmd_symbolize(int argc, char **argv);

#endif
