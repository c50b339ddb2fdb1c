#!/usr/bin/env bash
# Runs the demo with its lazy run in a lazyrt-executor reached over a socket:
#   .ci/remote-demo.sh SPEC EXECUTOR-COMMAND... -- DEMO-ARGS...
# SPEC is where the executor listens (tcp:127.0.0.1:0 or unix:PATH); the
# executor prints the address it listens on, the demo connects to it, and
# both must succeed: the demo's results equal the in-process eager run's,
# and the executor exits 0 once the demo hangs up.
set -euo pipefail
spec=$1
shift
executor=()
while [[ $# -gt 0 && $1 != -- ]]; do
    executor+=("$1")
    shift
done
shift
out=$(mktemp)
"${executor[@]}" --listen "$spec" >"$out" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -f "$out"' EXIT
listening=""
for _ in $(seq 300); do
    listening=$(sed -n 's/^lazyrt-executor listening on //p' "$out")
    [[ -n $listening ]] && break
    kill -0 $pid 2>/dev/null || { echo "remote-demo: the executor exited before listening" >&2; exit 1; }
    sleep 0.1
done
[[ -n $listening ]] || { echo "remote-demo: the executor did not listen within 30 s" >&2; exit 1; }
echo "remote-demo: executor pid $pid listening on $listening"
target/release/lazyrt demo --executor "$listening" "$@"
status=0
wait $pid || status=$?
trap - EXIT
rm -f "$out"
if [[ $status -ne 0 ]]; then
    echo "remote-demo: the executor exited with status $status after the demo" >&2
    exit 1
fi
echo "remote-demo: the executor exited cleanly"
