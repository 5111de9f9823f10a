#!/usr/bin/env bash
# `make bench`: runs each benchmark pair in ci/bench-pairs.txt interleaved (ours, baseline, ours, …) for
# ROUNDS rounds in the same run on the same machine, and prints the medians and ours/baseline ratios as
# a Markdown table (the table docs/performance.md keeps). Absolute numbers on a shared machine are noise;
# the ratios measured side by side are the signal.
#
#   ROUNDS=5 bash ci/bench.sh [filter-regex]     (filter applies to the pair labels)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds="${ROUNDS:-5}"
filter="${1:-.}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The suites with real services need them (etcd for the datastore and IPAM pairs, root for CNI).
# shellcheck source=ci/test-env.sh
source ci/test-env.sh

# "a/b/c" -> "^a$/^b$/^c$": go test's -bench matches each level of a benchmark name separately.
anchor() { local IFS=/; local parts=($1) out=() p; for p in "${parts[@]}"; do out+=("^${p}\$"); done; echo "${out[*]}"; }

declare -A built
: > "$work/pairs"
: > "$work/out"
while IFS='|' read -r pkg label ours base benchtime; do
	pkg="$(echo "$pkg" | xargs)"; label="$(echo "$label" | xargs)"
	ours="$(echo "$ours" | xargs)"; base="$(echo "$base" | xargs)"; benchtime="$(echo "${benchtime:-1s}" | xargs)"
	[[ -z "$pkg" || "$pkg" == \#* ]] && continue
	[[ "$label" =~ $filter ]] || continue
	bin="$work/$(echo "$pkg" | tr '/.' '__').test"
	if [[ -z "${built[$pkg]:-}" ]]; then
		echo "bench: building $pkg" >&2
		go test -c -o "$bin" "./$pkg"
		built[$pkg]=1
	fi
	echo "$label | $ours | $base" >> "$work/pairs"
	for ((r = 1; r <= rounds; r++)); do
		echo "bench: $label round $r/$rounds" >&2
		for b in "$ours" "$base"; do
			(cd "$pkg" && "$bin" -test.run '^$' -test.bench "$(anchor "$b")" -test.benchmem \
				-test.benchtime "$benchtime" -test.count 1) >> "$work/out"
		done
	done
done < ci/bench-pairs.txt

echo
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores, $(go version | awk '{print $3}'), ${rounds} interleaved rounds:"
echo
go run ./ci/benchratio -pairs "$work/pairs" < "$work/out"
