/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * bpf/vmlinux_fallback.h — used instead of a vmlinux.h generated from
 * /sys/kernel/btf/vmlinux when the build host has no kernel BTF (or no
 * bpftool). It declares only what the bpf/ programs use, with
 * preserve_access_index, so libbpf's CO-RE relocations still fix up every
 * field offset against the BTF of the kernel the program is loaded on.
 * Keep it in sync when the programs read new kernel fields.
 */
#ifndef __VMLINUX_H__
#define __VMLINUX_H__

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/bpf_perf_event.h>
#include <stdbool.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef int pid_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)
struct mm_struct {
	unsigned long task_size;
};

struct task_struct {
	pid_t pid;
	pid_t tgid;
	struct task_struct *group_leader;
	struct mm_struct *mm;
	char comm[16];
};
#pragma clang attribute pop

#endif
