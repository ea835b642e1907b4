#!/usr/bin/env bash
# bench/run.sh: run the ingest benchmarks, the cold-start and load harnesses
# (the load harness twice: with its default log lines, then with 20 KB lines
# at 1,000 and 2,500 lines/s, where PutRecords bodies pass 1 MiB) and the
# layer build, then regenerate the committed results in bench/results/
# (README.md with every table, ingest.svg, and the raw outputs).
#
# Environment:
#   BENCHCOUNT      -count of the ingest benchmarks (default 10)
#   BENCH_OUTPUT    reuse this `go test -bench` output instead of running the
#                   ingest benchmarks (e.g. bench/results/latest.txt from make bench)
#   COLDSTART_RUNS  runs of each extension in the cold-start harness (default 100:
#                   enough rounds for a 96.5% interval of the paired difference)
#   LOAD_DURATION   time per rate in both load runs (default 10s)
#   SKIP_LAYER      set to skip `make layer` (sizes of existing zips are used)
#   BENCH_NOTE      conditions of the run, printed in the report
set -euo pipefail
cd "$(dirname "$0")/.."

out=bench/results
mkdir -p "$out"
name=kinesis-telemetry-extension

bench=${BENCH_OUTPUT:-}
if [[ -z $bench ]]; then
	bench=$out/ingest.txt
	go test -run='^$' -bench=. -benchmem -count="${BENCHCOUNT:-10}" -timeout 60m ./bench/... | tee "$bench"
fi
go tool benchstat -filter '/impl:(kte OR baseline)' -col /impl "$bench" > "$out/ingest-benchstat.txt"

# Where KTE's end-to-end CPU goes (the top of the CPU profile).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -run='^$' -bench='EndToEnd/body=(events_1000|1MiB)/impl=kte' -benchtime=4s \
	-cpuprofile="$tmp/kte.prof" -o "$tmp/ingest.test" ./bench/ingest/ > /dev/null
{
	echo "# go test -run='^\$' -bench='EndToEnd/body=(events_1000|1MiB)/impl=kte' -benchtime=4s -cpuprofile=kte.prof ./bench/ingest/"
	echo "# go tool pprof -top -nodecount=25 ingest.test kte.prof"
	go tool pprof -top -nodecount=25 "$tmp/ingest.test" "$tmp/kte.prof" 2>/dev/null | sed -n '4,$p'
} > "$out/profile-kte-endtoend.txt"

go run ./bench/coldstart -n "${COLDSTART_RUNS:-100}" -out "$out/coldstart.json"
go run ./bench/load -duration "${LOAD_DURATION:-10s}" -out "$out/load.json"
go run ./bench/load -rates 1000,2500 -lines 20000 -duration "${LOAD_DURATION:-10s}" -out "$out/load-large.json"

if [[ -z ${SKIP_LAYER:-} ]]; then
	make layer
fi

note=${BENCH_NOTE:-"Machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg) when the report was generated ($(date -u +%Y-%m-%dT%H:%MZ))."}
go run ./bench/chart -bench "$bench" -coldstart "$out/coldstart.json" -load "$out/load.json" \
	-load-large "$out/load-large.json" -layers "build/$name-amd64.zip,build/$name-arm64.zip" -note "$note" -out "$out"
echo "bench/run.sh: wrote $out/README.md and $out/ingest.svg"
