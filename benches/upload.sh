#!/usr/bin/env bash
# Upload benchmark (issue 5), one command, side by side in one run: a file of
# SIZE_MIB (default 1024) uploaded through the API (GraphQL multipart request,
# release build, SQLite, a private SeaweedFS) against the same file PUT
# straight into the same S3 server (a presigned URL the API granted), from
# the same machine. Reports throughput, the ratio, and the server's RSS growth
# (sampled every 50 ms during the upload).
set -euo pipefail
[ -n "${BENCH_DEBUG:-}" ] && set -x
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
S3_PORT=${S3_PORT:-18633}
cargo build --release --quiet --bin aggios
BIN="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/release/aggios"
WORK=$(mktemp -d -t aggios-upload.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

. scripts/seaweedfs.sh
start_seaweedfs "$WORK" "$S3_PORT" bench bench bench-secret
PIDS+=("$WEED_PID")

export AGGIOS_DATA_DIR="$WORK/data" AGGIOS_SERVER_PORT=0 AGGIOS_SERVER_BASE_DOMAIN=bench.test AGGIOS_LOG_LEVEL=warn
export AGGIOS_STORAGE_BACKEND=s3 AGGIOS_STORAGE_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" AGGIOS_STORAGE_S3_BUCKET=bench
export AGGIOS_STORAGE_S3_ACCESS_KEY_ID=bench AGGIOS_STORAGE_S3_SECRET_ACCESS_KEY=bench-secret AGGIOS_STORAGE_URL_TTL_SECS=3600
"$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
APID=$!; PIDS+=($APID)
for _ in $(seq 1 100); do grep -q 'listening on' "$WORK/serve.out" 2>/dev/null && break; sleep 0.1; done
URL=$(sed -n 's/^Aggios is listening on //p' "$WORK/serve.out")
[ -n "$URL" ] || { cat "$WORK/serve.err"; exit 1; }

gql() { curl -sf "$URL/graphql" -H 'content-type: application/json' "$@"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
TOKEN=$(gql -H 'Host: api.bench.test' -d '{"query":"mutation { signUp(input: {agencyName: \"Up\", subdomain: \"uploads\", email: \"o@uploads.bench\", password: \"tundra velvet orbit 42\", firstName: \"U\", lastName: \"P\"}) { accessToken } }"}' | field 'd["data"]["signUp"]["accessToken"]')
H=(-H 'Host: uploads.bench.test' -H "Authorization: Bearer $TOKEN")
CLIENT=$(gql "${H[@]}" -d '{"query":"mutation { createClient(input: {name: \"C\"}) { id } }"}' | field 'd["data"]["createClient"]["id"]')
PROJECT=$(gql "${H[@]}" -d "{\"query\":\"mutation { createProject(input: {clientId: \\\"$CLIENT\\\", name: \\\"P\\\"}) { id } }\"}" | field 'd["data"]["createProject"]["id"]')

head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/file.bin"
BYTES=$(stat -c %s "$WORK/file.bin")
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$APID/status"; }

# Straight to S3: a presigned PUT the API grants (nothing is recorded).
PUT_URL=$(gql "${H[@]}" -d "{\"query\":\"mutation { requestDocumentUpload(input: {projectId: \\\"$PROJECT\\\", name: \\\"direct\\\", contentType: \\\"application/octet-stream\\\", sizeBytes: $BYTES}) { url } }\"}" | field 'd["data"]["requestDocumentUpload"]["url"]')
DIRECT=$(curl -sf -o /dev/null -w '%{time_total}' -X PUT -H 'content-type: application/octet-stream' -T "$WORK/file.bin" "$PUT_URL")

# Through the API, sampling the server's RSS.
BASE=$(rss_kib)
( peak=$BASE; while kill -0 "$APID" 2>/dev/null && [ ! -e "$WORK/done" ]; do r=$(rss_kib); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.05; done; echo "$peak" >"$WORK/peak" ) &
SAMPLER=$!
OPS="{\"query\":\"mutation(\$input: UploadDocumentInput!) { uploadDocument(input: \$input) { sizeBytes checksumSha256 } }\",\"variables\":{\"input\":{\"projectId\":\"$PROJECT\",\"file\":null}}}"
API=$(curl -sf -o "$WORK/answer.json" -w '%{time_total}' "$URL/graphql" "${H[@]}" -H 'Apollo-Require-Preflight: true' \
  -F "operations=$OPS" -F 'map={"0":["variables.input.file"]}' -F "0=@$WORK/file.bin;type=application/octet-stream")
touch "$WORK/done"; wait $SAMPLER
PEAK=$(cat "$WORK/peak")
SUM=$(sha256sum "$WORK/file.bin" | cut -d' ' -f1)
GOT=$(field 'd["data"]["uploadDocument"]["checksumSha256"]' <"$WORK/answer.json")
[ "$SUM" = "$GOT" ] || { echo "checksum mismatch: $(cat "$WORK/answer.json")"; exit 1; }

python3 - "$BYTES" "$DIRECT" "$API" "$BASE" "$PEAK" <<'PY'
import sys
size, direct, api, base, peak = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
mib = size / 2**20
print(f"file: {mib:.0f} MiB; checksums agree")
print("| path | seconds | MiB/s |")
print("|---|---|---|")
print(f"| straight to S3 (presigned PUT) | {direct:.2f} | {mib/direct:.1f} |")
print(f"| through the API (multipart GraphQL) | {api:.2f} | {mib/api:.1f} |")
print(f"\nAPI ÷ direct throughput: {direct/api*100:.0f}%")
print(f"server RSS: {base/1024:.1f} MiB before, {peak/1024:.1f} MiB at peak, growth {(peak-base)/1024:.1f} MiB")
PY
