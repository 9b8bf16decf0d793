// SPDX-License-Identifier: MIT
/*
 * Tests for profiler/proc.c: the container id in /proc/PID/cgroup, with
 * lines as the runtimes write them (cgroup v1 and v2, systemd and cgroupfs
 * drivers).
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <string.h>

#include "profiler/proc.h"

#define ID_A "3f1c2a7b9d8e4f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718"
#define ID_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define POD "kubepods-burstable-pod0f7e3c0a_5b1e_4c7f_9f0d_1a2b3c4d5e6f.slice"

static const struct {
	const char *what, *text, *want; /* want NULL: no container */
} cases[] = {
	{"docker, cgroup v2, systemd driver", "0::/system.slice/docker-" ID_A ".scope\n", ID_A},
	{"docker, cgroup v2, cgroupfs driver", "0::/docker/" ID_A "\n", ID_A},
	{"docker, cgroup v1",
	 "12:pids:/docker/" ID_A "\n11:memory:/docker/" ID_A "\n1:name=systemd:/docker/" ID_A
	 "\n0::/system.slice/containerd.service\n",
	 ID_A},
	{"kubernetes containerd, cgroup v2, systemd",
	 "0::/kubepods.slice/kubepods-burstable.slice/" POD "/cri-containerd-" ID_A ".scope\n",
	 ID_A},
	{"kubernetes, cgroup v1, cgroupfs",
	 "11:cpu,cpuacct:/kubepods/burstable/pod0f7e3c0a-5b1e-4c7f-9f0d-1a2b3c4d5e6f/" ID_A
	 "\n10:memory:/kubepods/burstable/pod0f7e3c0a-5b1e-4c7f-9f0d-1a2b3c4d5e6f/" ID_A "\n",
	 ID_A},
	{"kubernetes besteffort, cgroup v1", "4:devices:/kubepods/besteffort/podabc/" ID_A, ID_A},
	{"cri-o", "0::/kubepods.slice/kubepods-besteffort.slice/" POD "/crio-" ID_A ".scope\n",
	 ID_A},
	{"cri-o conmon is outside the container",
	 "0::/kubepods.slice/kubepods-besteffort.slice/" POD "/crio-conmon-" ID_A ".scope\n", NULL},
	{"podman rootful, cgroupns path", "0::/machine.slice/libpod-" ID_A ".scope/container\n",
	 ID_A},
	{"podman rootless",
	 "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_A ".scope\n",
	 ID_A},
	{"podman conmon", "0::/machine.slice/libpod-conmon-" ID_A ".scope\n", NULL},
	{"nerdctl", "0::/system.slice/nerdctl-" ID_A ".scope\n", ID_A},
	{"containerd default namespace, v1", "3:cpuset:/default/" ID_A "\n", ID_A},
	{"docker in docker: the inner container",
	 "0::/system.slice/docker-" ID_A ".scope/docker/" ID_B "\n", ID_B},
	{"host login session", "0::/user.slice/user-1000.slice/session-3.scope\n", NULL},
	{"host service", "0::/system.slice/ssh.service\n", NULL},
	{"init", "0::/init.scope\n", NULL},
	{"private cgroup namespace shows /", "0::/\n", NULL},
	{"63 hex digits",
	 "0::/docker/"
	 "3f1c2a7b9d8e4f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071\n",
	 NULL},
	{"65 hex digits", "0::/docker/" ID_A "0\n", NULL},
	{"uppercase is not a runtime's id",
	 "0::/docker/3F1C2A7B9D8E4F60A1B2C3D4E5F60718293A4B5C6D7E8F90A1B2C3D4E5F60718\n", NULL},
	{"id in the controller field only", "5:" ID_A ":/\n", NULL},
	{"empty", "", NULL},
	{"no colons", ID_A "\n", NULL},
};

Test(proc, cgroup_container_ids)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[65] = "unchanged";
		int err = prof_cgroup_container_id(cases[i].text, out);

		if (cases[i].want) {
			cr_expect_eq(err, 0, "%s: no id found", cases[i].what);
			cr_expect_str_eq(out, cases[i].want, "%s", cases[i].what);
		} else {
			cr_expect_eq(err, -ENOENT, "%s: found %s", cases[i].what, out);
		}
	}
}

/* This test process is on the host (or in a container); either way the answer is well-formed. */
Test(proc, own_cgroup_parses)
{
	char out[65];
	FILE *f = fopen("/proc/self/cgroup", "r");
	char buf[4096];
	size_t n;
	int err;

	cr_assert_not_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	err = prof_cgroup_container_id(buf, out);
	cr_assert(err == 0 || err == -ENOENT);
	if (!err)
		cr_assert_eq(strlen(out), 64);
}
