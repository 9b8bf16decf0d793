#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages bpfprof needs to build, run, test and
# benchmark, when they are missing. Fast (one dpkg-query) when nothing is.
set -euo pipefail

PKGS=(
	make gcc clang llvm libclang-rt-14-dev pkg-config bpftool
	libbpf-dev libelf-dev libdw-dev zlib1g-dev libzstd-dev
	libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler libjansson-dev libcurl4-openssl-dev
	libcriterion-dev libunwind-dev libiberty-dev elfutils binutils lld
	golang-go linux-perf procps time curl nodejs libxml2-utils
)

missing=()
for p in "${PKGS[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "bpfprof: missing packages: ${missing[*]}" >&2
	echo "bpfprof: run 'sudo make deps' (or install them with apt-get) first" >&2
	exit 1
fi
echo "bpfprof: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends "${missing[@]}"; then
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
