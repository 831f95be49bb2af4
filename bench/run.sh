#!/usr/bin/env bash
# The benchmark of movim-setup: how fast and how safe, measured on the test
# world side by side with what a user would do by hand, each figure a median over --runs runs with
# min and max. Prints one table and writes bench/results/<time>.json (compare two with
# `python3 bench/lib/report.py --compare OLD.json NEW.json`). Not part of the test suite.
#
# Usage: bash bench/run.sh [--runs N] [--sizes 10M,100M[,1G[:RUNS]]] [--only init,sizes,doctor]
#                          [--no-build] [--bin PATH] [--keep] [--out FILE]
# `--bin` measures another build of movim-setup (implies --no-build). A size may carry its own number of runs (`1G:1`: the 1 GB database once).
#
# Every compose project it starts is named bench<id>…, and only those are torn down.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
LIB="$ROOT/bench/lib"
BIN="$ROOT/target/release/movim-setup"

RUNS=3
SIZES=10M,100M
ONLY=init,sizes,doctor
BUILD=1
KEEP=0
OUT=""
FROM=v0.29.2
TO=v0.30.0
BAD=v0.30.1-daemon-exits

usage() {
	sed -n '2,12p' "$ROOT/bench/run.sh" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

while [ $# -gt 0 ]; do
	case "$1" in
		--runs) RUNS="$2"; shift 2 ;;
		--sizes) SIZES="$2"; shift 2 ;;
		--only) ONLY="$2"; shift 2 ;;
		--no-build) BUILD=0; shift ;;
		--bin) BIN="$(realpath "$2")"; BUILD=0; shift 2 ;;
		--keep) KEEP=1; shift ;;
		--out) OUT="$2"; shift 2 ;;
		-h | --help) usage 0 ;;
		*) echo "bench: unknown argument $1" >&2; usage 2 ;;
	esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench: --runs needs a positive integer" >&2; exit 2; }

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
wants() { [[ ",$ONLY," == *",$1,"* ]]; }

# 10M, 100M, 1G -> bytes (binary units).
size_bytes() {
	local n="${1%[MmGg]}" unit="${1: -1}"
	[[ "$n" =~ ^[0-9]+$ ]] || die "bad size $1 (use e.g. 10M, 100M, 1G)"
	case "$unit" in
		M | m) echo $((n * 1024 * 1024)) ;;
		G | g) echo $((n * 1024 * 1024 * 1024)) ;;
		*) die "bad size $1 (use e.g. 10M, 100M, 1G)" ;;
	esac
}
IFS=, read -r -a SIZE_LIST <<<"$SIZES"
for s in "${SIZE_LIST[@]}"; do
	size_bytes "${s%%:*}" >/dev/null
	[[ "$s" != *:* || "${s#*:}" =~ ^[1-9][0-9]*$ ]] || die "bad runs in --sizes $s"
done

# ---------------------------------------------------------------------------------------------------
# Setup: the world, the release binary, a scratch directory, cleanup of what we started.
# ---------------------------------------------------------------------------------------------------

command -v python3 >/dev/null || die "python3 is needed"
command -v hyperfine >/dev/null || die "hyperfine is needed (apt-get install -y hyperfine)"
ID="$(date +%H%M%S)$$"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/movim-bench.XXXXXX")"
log "making sure the test world exists (tests/world/provision.sh)"
if ! bash tests/world/provision.sh >"$WORK/provision.log" 2>&1; then
	tail -n 30 "$WORK/provision.log" >&2
	die "tests/world/provision.sh failed (log: $WORK/provision.log)"
fi
WORLD_DIR="${MOVIM_WORLD_DIR:-/var/cache/movim-setup-world}"
REGISTRY="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["registry"])' "$WORLD_DIR/world.json")"
if [ "$BUILD" = 1 ]; then
	log "cargo build --release"
	cargo build --release --quiet
fi
[ -x "$BIN" ] || die "$BIN is missing; run cargo build --release"

RESULTS="$WORK/results.jsonl"
MACHINE="$WORK/machine.json"
DONE=0
STARTED=$SECONDS
if [ -z "$OUT" ]; then
	mkdir -p "$ROOT/bench/results"
	OUT="$ROOT/bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json"
fi
: >"$RESULTS"
PROJECTS=()
PIDS=()

teardown() {
	local project="$1" label ids kind
	label="label=com.docker.compose.project=$project"
	ids="$(docker ps -aq --filter "$label")"
	# shellcheck disable=SC2086 # ids are whitespace-separated container ids
	[ -z "$ids" ] || docker rm -f -v $ids >/dev/null 2>&1 || true
	for kind in volume network; do
		ids="$(docker "$kind" ls -q --filter "$label")"
		# shellcheck disable=SC2086
		[ -z "$ids" ] || docker "$kind" rm $ids >/dev/null 2>&1 || true
	done
}

report() {
	python3 "$LIB/report.py" --machine "$MACHINE" --results "$RESULTS" --json "$1" \
		--wall "$((SECONDS - STARTED))"
}

cleanup() {
	local pid project
	if [ "$DONE" = 0 ] && [ -s "$RESULTS" ] && [ -s "$MACHINE" ]; then
		log "the bench stopped early; what it measured is in ${OUT%.json}.partial.json"
		report "${OUT%.json}.partial.json" || true
	fi
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for project in "${PROJECTS[@]}"; do teardown "$project"; done
	if [ "$KEEP" = 1 ]; then
		log "kept $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# record METRIC VALUE UNIT [SIZE] [RUN]
record() {
	python3 -c 'import json, sys
m, v, u, s, r = sys.argv[1:6]
print(json.dumps({"metric": m, "value": float(v), "unit": u, "size": s or None, "run": int(r) if r else None}))' \
		"$1" "$2" "$3" "${4:-}" "${5:-}" >>"$RESULTS"
}

now() { date +%s.%N; }
since() { python3 -c 'import sys, time; print(round(time.time() - float(sys.argv[1]), 3))' "$1"; }

# tool VERB DIR TRACE_JSON [ARGS...]: the release binary under trace.py (stderr lines timed, RSS).
tool() {
	local verb="$1" dir="$2" trace="$3"
	shift 3
	env -u MOVIM_SETUP_DIR NO_COLOR=1 python3 "$LIB/trace.py" --out "$trace" -- \
		"$BIN" "$verb" --dir "$dir" "$@"
}

trace_rc() { python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["rc"])' "$1"; }
trace_tail() { python3 -c 'import json, sys; [print(l[2]) for l in json.load(open(sys.argv[1]))["lines"][-25:]]' "$1" >&2; }

# init_stack PROJECT DIR PORT TRACE: `init --yes` for the world's images in proxy mode.
init_stack() {
	local project="$1" dir="$2" port="$3" trace="$4"
	PROJECTS+=("$project")
	tool init "$dir" "$trace" --yes --project "$project" --domain movim.test --tls proxy \
		--http-port "$port" --xmpp external --xmpp-domain example.test --release "$FROM" \
		--image-repository "$REGISTRY/movim" --library-repository "$REGISTRY/library"
	if [ "$(trace_rc "$trace")" != 0 ]; then
		trace_tail "$trace"
		die "init of $project failed (trace: $trace)"
	fi
}

container() {
	docker ps -q --filter "label=com.docker.compose.project=$1" \
		--filter "label=com.docker.compose.service=$2" | head -n 1
}

psql_in() {
	local pg="$1"
	shift
	docker exec -e PGOPTIONS="-c max_parallel_workers_per_gather=0 -c max_parallel_maintenance_workers=0" \
		"$pg" psql -U movim -d movim -v ON_ERROR_STOP=1 -qAt "$@"
}

# check_rows PROJECT WHEN: the generated messages are all there (ROWS, counted after the fill).
check_rows() {
	local n
	n="$(psql_in "$(container "$1" postgres)" -c "select count(*) from messages")"
	[ "$n" = "$ROWS" ] || die "$ROWS messages were generated but $n are there $2"
}

# probe_start PORT LOG: raw websocket handshakes every 100 ms, in the background.
probe_start() {
	python3 "$LIB/probe.py" --port "$1" >"$2" &
	PROBE_PID=$!
	PIDS+=("$PROBE_PID")
}
probe_stop() {
	kill "$PROBE_PID" 2>/dev/null || true
	wait "$PROBE_PID" 2>/dev/null || true
}

# wait_101 PORT SECONDS: until a handshake through web answers 101.
wait_101() {
	python3 - "$1" "$2" <<-'EOF'
		import os, sys, time
		sys.path.insert(0, os.environ["BENCH_LIB"])
		from probe import handshake
		port, limit = int(sys.argv[1]), float(sys.argv[2])
		end = time.time() + limit
		while time.time() < end:
		    try:
		        if handshake(port, "https://movim.test", "movim.test", 1.0)[0]:
		            sys.exit(0)
		    except OSError:
		        pass
		    time.sleep(0.05)
		sys.exit(1)
	EOF
}
export BENCH_LIB="$LIB"

# ---------------------------------------------------------------------------------------------------
# The machine.
# ---------------------------------------------------------------------------------------------------

python3 - "$MACHINE" "$BIN" "$RUNS" "$SIZES" <<-'EOF'
	import json, os, platform, subprocess, sys
	def out(*cmd):
	    try:
	        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
	    except OSError:
	        return ""
	cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "")
	mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
	json.dump({
	    "nproc": os.cpu_count(),
	    "cpu": cpu,
	    "memory_gib": round(mem / 1024 / 1024, 1),
	    "kernel": platform.release(),
	    "engine": "docker " + out("docker", "version", "--format", "{{.Server.Version}}"),
	    "storage_driver": out("docker", "info", "--format", "{{.Driver}}"),
	    "compose": out("docker", "compose", "version", "--short"),
	    "tool": out(sys.argv[2], "--version"),
	    "binary": sys.argv[2],
	    "other_binary": os.path.realpath(sys.argv[2]) != os.path.realpath("target/release/movim-setup"),
	    "commit": out("git", "rev-parse", "--short", "HEAD") + ("+dirty" if out("git", "status", "--porcelain") else ""),
	    "runs": int(sys.argv[3]),
	    "sizes": sys.argv[4].split(","),
	}, open(sys.argv[1], "w"))
EOF
log "machine: $(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["nproc"], "cpu,", m["memory_gib"], "GiB,", m["engine"])' "$MACHINE")"

# ---------------------------------------------------------------------------------------------------
# 1. init --yes to verified health vs `docker compose up -d --wait` of the same file, fresh volumes.
# ---------------------------------------------------------------------------------------------------

# The stack the doctor section measures: the last init of section 1 (or its own).
DOCTOR_DIR=""

bench_init() {
	local r dir port project raw rawdir t0 raw_up raw_101 init_wall
	for ((r = 1; r <= RUNS; r++)); do
		project="bench${ID}i$r"
		dir="$WORK/init$r/movim"
		port="$(free_port)"
		log "init run $r/$RUNS: movim-setup init ($project)"
		init_stack "$project" "$dir" "$port" "$WORK/init$r.trace.json"
		init_wall="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["wall"])' "$WORK/init$r.trace.json")"
		record init.tool "$init_wall" s "" "$r"
		if [ "$r" = "$RUNS" ] && wants doctor; then
			DOCTOR_DIR="$dir"
			DOCTOR_PROJECT="$project"
			DOCTOR_PORT="$port"
		else
			teardown "$project"
		fi

		# The same generated files, a new project (fresh volumes), the port of a stack that is down.
		raw="bench${ID}r$r"
		rawdir="$WORK/raw$r"
		PROJECTS+=("$raw")
		mkdir -p "$rawdir"
		cp -a "$dir/compose.yaml" "$dir/movim.env" "$dir/postgres.env" "$rawdir/"
		port="$(free_port)"
		sed -i "s/127\.0\.0\.1:[0-9]*:80/127.0.0.1:$port:80/" "$rawdir/compose.yaml"
		log "init run $r/$RUNS: docker compose up -d --wait ($raw)"
		t0="$(now)"
		(cd "$rawdir" && docker compose -p "$raw" -f compose.yaml up -d --wait --quiet-pull >"$rawdir/up.log" 2>&1) ||
			die "docker compose up --wait failed for $raw: $(tail -n 20 "$rawdir/up.log")"
		raw_up="$(since "$t0")"
		wait_101 "$port" 120 || die "the raw compose stack $raw never answered a websocket handshake"
		raw_101="$(since "$t0")"
		record init.raw_compose "$raw_up" s "" "$r"
		record init.raw_compose_to_101 "$raw_101" s "" "$r"
		record init.ratio "$(python3 -c "print(round($init_wall / $raw_up, 3))")" x "" "$r"
		teardown "$raw"
	done
}

# ---------------------------------------------------------------------------------------------------
# 2-4, 6. Per database size: upgrade downtime, automatic rollback, backup/restore vs raw, memory.
# ---------------------------------------------------------------------------------------------------

# fill PG BYTES: generated chat messages until the messages table (with its indexes) holds BYTES.
# Parallel workers are off: their shared memory does not fit the container's 64 MB /dev/shm.
fill() {
	local pg="$1" target="$2" have rows per_row batch count=0
	psql_in "$pg" -c "insert into users (id) values ('bench@example.test') on conflict do nothing"
	per_row=0
	while :; do
		have="$(psql_in "$pg" -c "select pg_total_relation_size('messages')")"
		[ "$have" -lt "$target" ] || break
		if [ "$per_row" = 0 ]; then
			rows=10000
		else
			rows=$(((target - have) / per_row + 1))
			[ "$rows" -le 500000 ] || rows=500000
		fi
		psql_in "$pg" -c "insert into messages (user_id, jidfrom, jidto, body, published)
			select 'bench@example.test', 'alice@example.test', 'bob@example.test',
				md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) || md5((g * 31)::text)
					|| md5((g * 37)::text) || md5((g * 41)::text),
				now() - g * interval '1 second'
			from generate_series($((count + 1)), $((count + rows))) g"
		count=$((count + rows))
		batch="$(psql_in "$pg" -c "select pg_total_relation_size('messages')")"
		per_row=$(((batch - have) / rows))
		[ "$per_row" -gt 0 ] || per_row=1
	done
	psql_in "$pg" -c "vacuum analyze messages" -c "checkpoint"
}

bench_size() {
	local size="$1" r="$2" RUNS="$3" bytes project dir port pg t0 raw_dump raw_restore
	bytes="$(size_bytes "$size")"
	project="bench${ID}s${size,,}$r"
	dir="$WORK/$size-$r/movim"
	port="$(free_port)"
	log "$size run $r/$RUNS: init $FROM ($project)"
	init_stack "$project" "$dir" "$port" "$WORK/$size-$r.init.json"
	pg="$(container "$project" postgres)"
	log "$size run $r/$RUNS: generating $size of messages"
	t0="$(now)"
	fill "$pg" "$bytes"
	log "$size run $r/$RUNS: generated in $(since "$t0") s"
	ROWS="$(psql_in "$pg" -c "select count(*) from messages")"
	record db.bytes "$(psql_in "$pg" -c "select pg_database_size('movim')")" B "$size" "$r"
	record db.messages_bytes "$(psql_in "$pg" -c "select pg_total_relation_size('messages')")" B "$size" "$r"

	# Raw pg_dump -Fc / pg_restore of the same database, through docker exec, to/from a host file.
	log "$size run $r/$RUNS: raw pg_dump -Fc and pg_restore"
	t0="$(now)"
	docker exec "$pg" pg_dump --no-password -Fc -U movim -d movim >"$WORK/raw.dump"
	raw_dump="$(since "$t0")"
	docker exec "$pg" createdb -U movim benchrestore
	t0="$(now)"
	docker exec -i "$pg" pg_restore --no-password -U movim -d benchrestore --exit-on-error <"$WORK/raw.dump"
	raw_restore="$(since "$t0")"
	[ "$(docker exec "$pg" psql -U movim -d benchrestore -qAt -c "select count(*) from messages")" = "$ROWS" ] ||
		die "the raw pg_restore did not restore $ROWS messages"
	docker exec "$pg" dropdb -U movim benchrestore
	record backup.raw "$raw_dump" s "$size" "$r"
	record restore.raw "$raw_restore" s "$size" "$r"
	record dump.raw_bytes "$(stat -c %s "$WORK/raw.dump")" B "$size" "$r"
	rm -f "$WORK/raw.dump"

	# 2. upgrade FROM -> TO with the probe running.
	log "$size run $r/$RUNS: upgrade $FROM -> $TO"
	probe_start "$port" "$WORK/$size-$r.upgrade.probe"
	sleep 0.5
	tool upgrade "$dir" "$WORK/$size-$r.upgrade.json" --yes --to "$TO"
	wait_101 "$port" 60 || true
	sleep 0.3
	probe_stop
	if [ "$(trace_rc "$WORK/$size-$r.upgrade.json")" != 0 ]; then
		trace_tail "$WORK/$size-$r.upgrade.json"
		die "upgrade $FROM -> $TO failed"
	fi
	python3 "$LIB/analyze.py" upgrade "$WORK/$size-$r.upgrade.json" "$WORK/$size-$r.upgrade.probe" \
		--dir "$dir" --size "$size" --run "$r" >>"$RESULTS"
	check_rows "$project" "after the upgrade to $TO"

	# 4. the tool's restore: back to FROM by hand (its code cannot read TO's database).
	log "$size run $r/$RUNS: rollback --to $FROM (restore)"
	tool rollback "$dir" "$WORK/$size-$r.rollback.json" --yes --to "$FROM"
	if [ "$(trace_rc "$WORK/$size-$r.rollback.json")" != 0 ]; then
		trace_tail "$WORK/$size-$r.rollback.json"
		die "rollback -> $FROM failed"
	fi
	python3 "$LIB/analyze.py" rollback "$WORK/$size-$r.rollback.json" --dir "$dir" --size "$size" --run "$r" >>"$RESULTS"
	check_rows "$project" "after the rollback to $FROM"

	# 3. automatic rollback: FROM -> BAD, whose daemon exits.
	log "$size run $r/$RUNS: upgrade $FROM -> $BAD (automatic rollback)"
	probe_start "$port" "$WORK/$size-$r.bad.probe"
	sleep 0.5
	tool upgrade "$dir" "$WORK/$size-$r.bad.json" --yes --to "$BAD"
	wait_101 "$port" 60 || true
	sleep 0.3
	probe_stop
	python3 "$LIB/analyze.py" auto-rollback "$WORK/$size-$r.bad.json" "$WORK/$size-$r.bad.probe" \
		--size "$size" --run "$r" >>"$RESULTS" || {
		trace_tail "$WORK/$size-$r.bad.json"
		die "the automatic rollback from $BAD did not end healthy"
	}
	check_rows "$project" "after the automatic rollback from $BAD"
	teardown "$project"
}

# ---------------------------------------------------------------------------------------------------
# 5. doctor on a healthy stack, and start-up.
# ---------------------------------------------------------------------------------------------------

bench_doctor() {
	local runs=$((RUNS < 10 ? 10 : RUNS))
	if [ -z "$DOCTOR_DIR" ]; then
		DOCTOR_DIR="$WORK/doctor/movim"
		DOCTOR_PORT="$(free_port)"
		log "doctor: init ${FROM} (bench${ID}d)"
		DOCTOR_PROJECT="bench${ID}d"
		init_stack "$DOCTOR_PROJECT" "$DOCTOR_DIR" "$DOCTOR_PORT" "$WORK/doctor.init.json"
	fi
	wait_101 "$DOCTOR_PORT" 60 || die "the doctor stack is not healthy"
	log "doctor: hyperfine ($runs runs)"
	env -u MOVIM_SETUP_DIR NO_COLOR=1 hyperfine --style none -N --warmup 1 --runs "$runs" \
		--export-json "$WORK/doctor.hyperfine.json" "$BIN doctor --dir $DOCTOR_DIR" >&2
	log "--help: hyperfine"
	hyperfine --style none -N --warmup 5 --runs 100 \
		--export-json "$WORK/help.hyperfine.json" "$BIN --help" >&2
	python3 "$LIB/analyze.py" hyperfine "$WORK/doctor.hyperfine.json" --metric doctor.wall >>"$RESULTS"
	python3 "$LIB/analyze.py" hyperfine "$WORK/help.hyperfine.json" --metric help.wall >>"$RESULTS"
	teardown "$DOCTOR_PROJECT"
}

# ---------------------------------------------------------------------------------------------------

wants init && bench_init
wants doctor && bench_doctor
if wants sizes; then
	for spec in "${SIZE_LIST[@]}"; do
		size="${spec%%:*}" runs="$RUNS"
		[[ "$spec" != *:* ]] || runs="${spec#*:}"
		for ((r = 1; r <= runs; r++)); do
			bench_size "$size" "$r" "$runs"
		done
	done
fi

report "$OUT"
DONE=1
log "results: $OUT"
