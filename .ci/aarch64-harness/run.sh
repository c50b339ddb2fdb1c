#!/usr/bin/env bash
# Builds and runs the AArch64 fallback harness for asm/aarch64_sysv_reentry.S
# under qemu-user (see harness.c). .ci/run uses it when the Rust
# aarch64-unknown-linux-gnu target is unavailable (or when
# LAZYRT_CI_AARCH64_HARNESS=1); run it by hand with
#
#   bash .ci/aarch64-harness/run.sh [--out DIR]
#
# Needs the Debian packages gcc-aarch64-linux-gnu, libc6-dev-arm64-cross and
# qemu-user. Builds at -O0 and -O2 (different register allocation in the
# callers and the resolver), runs both, ends with `N passed, N failed` and
# exits non-zero if anything failed or could not be built or run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out="$root/target/aarch64-harness"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cc=${AARCH64_CC:-aarch64-linux-gnu-gcc}
qemu=${QEMU_AARCH64:-qemu-aarch64}
sysroot=${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}
for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: $tool not found; install gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" >&2
        exit 2
    fi
done

mkdir -p "$out"
total_passed=0
total_failed=0
for opt in O0 O2; do
    exe="$out/harness-$opt"
    echo "== aarch64 harness: $cc -$opt, asm/aarch64_sysv_reentry.S"
    "$cc" "-$opt" -g -Wall -Wextra -Werror -o "$exe" \
        "$here/harness.c" "$here/resolver.c" "$root/asm/aarch64_sysv_reentry.S"
    set +e
    "$qemu" -L "$sysroot" "$exe" | tee "$out/harness-$opt.log"
    status=${PIPESTATUS[0]}
    set -e
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out/harness-$opt.log" | tail -n 1 || true)
    if [[ -z "$line" ]]; then
        echo "run.sh: harness-$opt exited with status $status before reporting"
        total_failed=$((total_failed + 1))
        continue
    fi
    read -r p _ f _ <<<"$line"
    total_passed=$((total_passed + p))
    total_failed=$((total_failed + f))
    if [[ $status -ne 0 && $f -eq 0 ]]; then
        echo "run.sh: harness-$opt exited with status $status"
        total_failed=$((total_failed + 1))
    fi
done
echo "aarch64 harness total:"
echo "$total_passed passed, $total_failed failed"
[[ $total_failed -eq 0 ]]
