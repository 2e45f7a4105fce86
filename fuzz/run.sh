#!/usr/bin/env bash
# Runs every fuzz target for a fixed time, one after another, and prints one line of figures
# per target (executions, coverage). Usage:
#
#   fuzz/run.sh SECONDS [TARGET...]     SECONDS is the total, split evenly across the targets
#
# Needs nightly and cargo-fuzz (`cargo install cargo-fuzz`). Seeds come from fixtures/ on every
# run (fuzz/seeds/, not committed); what libFuzzer learns stays in fuzz/corpus/ (not committed).
# A crash lands in fuzz/artifacts/TARGET/; copy it to fuzz/regressions/TARGET/ and
# tests/fuzz_regressions.rs replays it in the normal suite. Logs: fuzz/logs/TARGET.log.
set -euo pipefail

total=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
fuzz=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$fuzz")
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(ews_decode ews_responses ews_stream graph_json config_toml)
fi
per=$((total / ${#targets[@]}))
if [ "$per" -lt 1 ]; then
    echo "fuzz/run.sh: $total s is less than one second per target; give at least ${#targets[@]}" >&2
    exit 2
fi

# Seed corpora from our own fixtures, named after their folder and file (names repeat across
# operations). ews_stream reads its first byte as the chunk size.
seeds() {
    local target=$1 dir=$fuzz/seeds/$1 prefix="" glob
    rm -rf "$dir" && mkdir -p "$dir"
    case $target in
        ews_decode | ews_responses) glob="ews/*/*.xml" ;;
        ews_stream) glob="ews/*/*.xml" prefix='\x07' ;;
        graph_json) glob="graph/*.json" ;;
        config_toml) glob="config/*.toml" ;;
        *) echo "fuzz/run.sh: unknown target $target" >&2 && exit 2 ;;
    esac
    for f in "$root"/fixtures/$glob; do
        { printf "$prefix"; cat "$f"; } > "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"
    done
}

cd "$fuzz"
cargo +nightly fuzz build --release >&2
mkdir -p logs
printf '%-14s %8s %14s %10s %8s %8s %s\n' target seconds executions exec/s cov ft crashes
status=0
for t in "${targets[@]}"; do
    seeds "$t"
    mkdir -p "corpus/$t" "artifacts/$t"
    # -rss_limit_mb and -timeout make runaway memory and hangs findings too.
    if ! cargo +nightly fuzz run --release "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$per" -rss_limit_mb=2048 -timeout=10 -max_len=1048576 \
        -print_final_stats=1 > "logs/$t.log" 2>&1; then
        status=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "logs/$t.log" | tail -1)
    last=$(grep -E '^#[0-9]+' "logs/$t.log" | grep -E ' cov: ' | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    crashes=$(find "artifacts/$t" -type f | wc -l)
    printf '%-14s %8s %14s %10s %8s %8s %s\n' "$t" "$per" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$crashes"
done
exit $status
