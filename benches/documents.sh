#!/usr/bin/env bash
# Persisted-queries benchmark (issue 12), one command, side by side in one
# run, on a release build over PostgreSQL (RLS) and Redis with the domain
# benchmark's data (benches/seed.sql) and its Q1 and Q2:
# - server CPU per request (utime + stime from /proc over a fixed number of
#   requests, benches/cpu_per_request.py) with the cache of parsed and
#   validated documents off and on: two servers of the same build, one with
#   persisted_queries.document_cache_bytes = 0; and on, by APQ hash alone;
# - the trusted-documents check for an API key: mode OFF, LOG_UNKNOWN (a
#   known text) and REQUIRE (by id);
# - the time to load a manifest of 1,000 operations through the API and
#   through the CLI.
# - the same saving measured inside the process, apart from the rest of a
#   request (`cargo bench --bench documents`).
# Each CPU figure is the median of ROUNDS runs of REQUESTS requests over
# CONNS connections, the variants compared taking turns within each round,
# so a change in the machine's load falls on all of them. Writes the tables
# to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-2000}
CONNS=${CONNS:-4}
ROUNDS=${ROUNDS:-5}
PG_ADMIN=${TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379}
DB=aggios_bench_documents
DB_URL="${PG_ADMIN%/*}/$DB?sslmode=disable"
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
WORK=$(mktemp -d -t aggios-bench-docs.XXXXXX)
PIDS=()
export PGOPTIONS="-c client_min_messages=warning"
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  redis-cli -u "$REDIS" --scan --pattern "bench-docs-$$*" 2>/dev/null | xargs -r redis-cli -u "$REDIS" del >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

export AGGIOS_DATA_DIR="$WORK" AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_DATABASE_URL="$DB_URL" AGGIOS_REDIS_URL="$REDIS" AGGIOS_REDIS_KEY_PREFIX="bench-docs-$$"
export AGGIOS_SERVER_ENVIRONMENT=production
"$BIN" keys generate >/dev/null
"$BIN" migrate up >/dev/null

start() { # name [VAR=value ...]: a server; sets URL_<name>, PID_<name>
  local name=$1; shift
  env "$@" AGGIOS_SERVER_PORT=0 "$BIN" serve >"$WORK/$name.out" 2>"$WORK/$name.err" &
  local pid=$!; PIDS+=($pid)
  for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  local url; url=$(sed -n 's/^Aggios is listening on //p' "$WORK/$name.out")
  [ -n "$url" ] || { cat "$WORK/$name.err"; exit 1; }
  printf -v "URL_$name" %s "$url"; printf -v "PID_$name" %s "$pid"
}
start on
start off AGGIOS_PERSISTED_QUERIES_DOCUMENT_CACHE_BYTES=0

gql() { curl -sf "$URL_on/graphql" -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }
gql -H 'Host: api.bench.test' -d '{"query":"mutation { signUp(input: {agencyName: \"Hash\", subdomain: \"hash-source\", email: \"h@h.bench\", password: \"tundra velvet orbit 42\", firstName: \"H\", lastName: \"S\"}) { accessToken } }"}' >/dev/null
HASH=$(psql "$DB_URL" -qAtc "SELECT password_hash FROM users WHERE email = 'h@h.bench'")
psql "$DB_URL" -q -v ON_ERROR_STOP=1 -v hash="$HASH" -f benches/seed.sql >/dev/null
HOST=t01.bench.test
TOKEN=$(gql -H "Host: $HOST" -d '{"query":"mutation { login(input: {email: \"u0@t01.bench\", password: \"tundra velvet orbit 42\"}) { accessToken } }"}' | field '["data"]["login"]["accessToken"]')
KEY=$(gql -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" -d '{"query":"mutation { createApiKey(input: {name: \"bench\", scope: READ}) { secret } }"}' | field '["data"]["createApiKey"]["secret"]')

Q1='{ clients(first: 10) { edges { node { id name email } } } }'
Q2='{ projects(first: 50) { edges { node { name client { name } documents(first: 5) { name sizeBytes uploader { email } } } } } }'
sha() { printf %s "$1" | sha256sum | cut -d' ' -f1; }
body() { python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1]}))' "$1"; }
apq() { python3 -c 'import json,sys; print(json.dumps({"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sys.argv[1]}}}))' "$1"; }
register() { python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "extensions": {"persistedQuery": {"version": 1, "sha256Hash": sys.argv[2]}}}))' "$1" "$2"; }
for q in "$Q1" "$Q2"; do gql -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" -d "$(register "$q" "$(sha "$q")")" >/dev/null; done

once() { # server body [extra args...] -> CPU µs per request over REQUESTS
  local server=$1 body=$2; shift 2
  local pid_var="PID_$server" url_var="URL_$server"
  python3 benches/cpu_per_request.py "${!pid_var}" "${!url_var}" "$REQUESTS" "$CONNS" --header "Host: $HOST" "$@" "$body" | field '["cpu_us_per_request"]'
}
# Medians of the columns of ROUNDS lines, and of each column's difference
# from the first: "m1 m2 ... d2 ...".
medians() { python3 -c '
import statistics, sys
rows = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
cols = list(zip(*rows))
print(" ".join(f"{statistics.median(c):.0f}" for c in cols), " ".join(f"{statistics.median(a - b for a, b in zip(cols[0], c)):.0f}" for c in cols[1:]))'; }
user=(--header "Authorization: Bearer $TOKEN")

echo "In process, apart from the rest of a request (release, one thread, 20,000 runs each):"
echo
cargo bench --quiet --bench documents 2>/dev/null
echo
echo "Server CPU per request (µs; medians of $ROUNDS rounds of $REQUESTS requests over $CONNS connections, the three variants taking turns in each round; release build, PostgreSQL + Redis):"
echo
echo "| query | cache off, text | cache on, text | cache on, APQ hash only | saved by the cache | saved with APQ |"
echo "|---|---|---|---|---|---|"
for name in Q1 Q2; do
  q=${!name}
  read -r off on hashed saved saved_apq < <(for _ in $(seq 1 "$ROUNDS"); do
    echo "$(once off "$(body "$q")" "${user[@]}") $(once on "$(body "$q")" "${user[@]}") $(once on "$(apq "$(sha "$q")")" "${user[@]}")"
  done | medians)
  echo "| $name | $off | $on | $hashed | $saved ($(( saved * 100 / off ))%) | $saved_apq ($(( saved_apq * 100 / off ))%) |"
done

# A manifest of 1,000 operations (Q1 and Q2 among them), ids as Apollo's tool makes them.
python3 - "$Q1" "$Q2" >"$WORK/manifest.json" <<'EOF'
import hashlib, json, sys
fields = ["id", "name", "email", "phone", "status", "notes", "createdAt", "updatedAt"]
bodies = list(sys.argv[1:3])
for i in range(998):
    picked = " ".join(f for j, f in enumerate(fields) if (i >> j) & 1) or "id"
    bodies.append(f"query Op{i} {{ clients(first: {i % 100 + 1}) {{ edges {{ node {{ {picked} }} }} }} }}")
ops = [{"id": hashlib.sha256(b.encode()).hexdigest(), "name": f"Op{n}", "type": "query", "body": b} for n, b in enumerate(bodies)]
print(json.dumps({"format": "apollo-persisted-query-manifest", "version": 1, "operations": ops}))
EOF
python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(json.dumps({"query": "mutation($m: TrustedDocumentManifestJSON!) { uploadTrustedDocuments(manifest: $m) { version operationCount } }", "variables": {"m": m}}))' "$WORK/manifest.json" >"$WORK/upload.json"
api_ms=$(curl -sf -o "$WORK/upload.out" -w '%{time_total}' "$URL_on/graphql" -H 'content-type: application/json' -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" --data-binary @"$WORK/upload.json" | python3 -c 'import sys; print(round(float(sys.stdin.read()) * 1000))')
grep -q '"operationCount":1000' "$WORK/upload.out" || { cat "$WORK/upload.out"; exit 1; }
started=$(date +%s%N)
cli_out=$("$BIN" tenant trusted-documents upload --subdomain t01 --file "$WORK/manifest.json")
cli_ms=$(( ($(date +%s%N) - started) / 1000000 ))
stored_ms=$(echo "$cli_out" | field '["storedMs"]')
echo
echo "Loading a manifest of 1,000 operations ($(wc -c <"$WORK/manifest.json") bytes): through the API ${api_ms} ms (one uploadTrustedDocuments request, end to end); through the CLI ${cli_ms} ms for the whole command, ${stored_ms} ms of it reading, checking and storing."

mode() { gql -H "Host: $HOST" -H "Authorization: Bearer $TOKEN" -d "{\"query\":\"mutation { setTrustedDocumentsMode(mode: $1) { mode } }\"}" >/dev/null; }
apikey=(--header "X-API-Key: $KEY")
echo
echo "The trusted-documents check for an API key (server CPU per request, µs, cache on):"
echo
echo "| query | mode OFF, text | LOG_UNKNOWN, a listed text | REQUIRE, by id (doc_id) | LOG_UNKNOWN − OFF | REQUIRE − OFF |"
echo "|---|---|---|---|---|---|"
for name in Q1 Q2; do
  q=${!name}
  read -r off logged required d_logged d_required < <(for _ in $(seq 1 "$ROUNDS"); do
    mode OFF; a=$(once on "$(body "$q")" "${apikey[@]}")
    mode LOG_UNKNOWN; b=$(once on "$(body "$q")" "${apikey[@]}")
    mode REQUIRE; c=$(once on "{\"doc_id\": \"$(sha "$q")\"}" "${apikey[@]}")
    echo "$a $b $c"
  done | medians)
  echo "| $name | $off | $logged | $required | $(( -d_logged )) | $(( -d_required )) |"
done
mode OFF
