#!/usr/bin/env python3
"""Fault run (issue 10): a mixed workload against a release build of the
server on a private PostgreSQL, Redis and SeaweedFS, one fault per phase, a
ledger of every acknowledged write checked at the end with every fault
healed. Started by benches/faults.sh, which builds the server, prepares the
work directory and kills whatever is left on exit; this driver starts,
breaks, heals and stops every service itself (pid files in WORK/pids).

Standard library only. The HTTP client is a small raw one (one connection
per request, `Connection: close`), so that no pooled connection or retry of
a library stands between a fault and what a client sees.
"""

import asyncio
import hashlib
import json
import os
import random
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections import Counter, defaultdict

ENV = os.environ
REPO = ENV["FAULTS_REPO"]
WORK = ENV["FAULTS_WORK"]
BIN = ENV["FAULTS_BIN"]
RESULTS = ENV["FAULTS_RESULTS"]
PG_BIN = ENV.get("PG_BIN", "/usr/lib/postgresql/15/bin")
AS_PG = shlex.split(ENV.get("FAULTS_AS_PG", ""))  # e.g. "runuser -u postgres --" when root
PG_PORT = int(ENV.get("PG_PORT", "25432"))
REDIS_PORT = int(ENV.get("REDIS_PORT", "26379"))
S3_PORT = int(ENV.get("S3_PORT", "20533"))
API_PORT = int(ENV.get("API_PORT", "28080"))
CLIENTS = int(ENV.get("CLIENTS", "8"))
TIMEOUT = float(ENV.get("REQUEST_TIMEOUT", "15"))
PRE = float(ENV.get("PRE_FAULT_SECS", "4"))  # load before the fault
OUTAGE = float(ENV.get("OUTAGE_SECS", "5"))  # how long a dependency stays down
REDIS_OUTAGE = float(ENV.get("REDIS_OUTAGE_SECS", OUTAGE))
POST = float(ENV.get("POST_HEAL_SECS", "8"))  # load at least this long after the heal
PHASE_SECS = float(ENV.get("PHASE_SECS", "15"))  # load at least this long per phase
QUIET = float(ENV.get("QUIET_SECS", "3"))  # after the heal, go on until this long without a failure...
RECOVERY_CAP = float(ENV.get("RECOVERY_CAP_SECS", "30"))  # ...but no longer than this after the heal
IDLE_CONNS = int(ENV.get("IDLE_CONNS", "500"))
HALF_CONNS = int(ENV.get("HALF_CONNS", "50"))
HOLD_SECS = float(ENV.get("HOLD_SECS", "60"))
FINAL_IDLE = float(ENV.get("FINAL_IDLE_SECS", "60"))
BACKOFF = float(ENV.get("FAILURE_BACKOFF_SECS", "0.1"))
UPLOAD_BYTES = 2048
PASSWORD = "tundra velvet orbit 42"
PG_DATA = os.path.join(WORK, "pg", "data")
PG_URL = f"postgres://postgres@127.0.0.1:{PG_PORT}/aggios"
SERVER_LOG = os.path.join(WORK, "server.log")
RUN_START = time.monotonic()
LOADAVG_START = os.getloadavg()[0]


def now():
    return time.monotonic()


def log(msg):
    print(f"[{now() - RUN_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- HTTP


class HttpFail(Exception):
    """A request that got no HTTP answer; `code` is its failure class."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body


def _parse(data):
    if not data:
        raise HttpFail("EOF")
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        raise HttpFail("EOF")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        raise HttpFail("BAD_RESPONSE") from None
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body, pos = bytearray(), 0
        while True:
            end = rest.find(b"\r\n", pos)
            if end < 0:
                raise HttpFail("EOF")
            size = int(rest[pos:end].split(b";")[0], 16)
            if size == 0:
                break
            chunk = rest[end + 2 : end + 2 + size]
            if len(chunk) < size:
                raise HttpFail("EOF")
            body += chunk
            pos = end + 2 + size + 2
        return Resp(status, headers, bytes(body))
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(rest) < n:
            raise HttpFail("EOF")
        rest = rest[:n]
    return Resp(status, headers, rest)


async def http(port, method, path, headers, body=b"", timeout=TIMEOUT):
    async def go():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            raise HttpFail("CONN_REFUSED") from None
        try:
            head = f"{method} {path} HTTP/1.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode("latin-1") + body)
            await writer.drain()
            data = await reader.read()
        except (ConnectionResetError, BrokenPipeError):
            raise HttpFail("CONN_RESET") from None
        finally:
            writer.close()
        return _parse(data)

    try:
        return await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        raise HttpFail("TIMEOUT") from None
    except OSError as e:
        raise HttpFail(f"OSERROR_{e.errno}") from None


def gql_body(query, variables=None):
    return json.dumps({"query": query, "variables": variables or {}}).encode()


async def gql(host, token, query, variables=None, timeout=TIMEOUT):
    """-> (json or None, failure code or None). Raises nothing."""
    headers = {"Host": host, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        r = await http(API_PORT, "POST", "/graphql", headers, gql_body(query, variables), timeout)
    except HttpFail as f:
        return None, f.code
    return classify(r)


def classify(r):
    try:
        j = json.loads(r.body)
    except ValueError:
        return None, f"HTTP_{r.status}"
    errs = j.get("errors") if isinstance(j, dict) else None
    if errs:
        return j, (errs[0].get("extensions") or {}).get("code") or f"HTTP_{r.status}_NO_CODE"
    if r.status != 200 or not isinstance(j, dict) or j.get("data") is None:
        return j, f"HTTP_{r.status}"
    return j, None


UPLOAD_QUERY = "mutation($i: UploadDocumentInput!) { uploadDocument(input: $i) { id checksumSha256 } }"


async def upload(host, token, project_id, name, data):
    boundary = "aggiosfaults" + os.urandom(8).hex()
    ops = json.dumps({"query": UPLOAD_QUERY, "variables": {"i": {"projectId": project_id, "name": name, "file": None}}})
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{ops}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n{{"0":["variables.i.file"]}}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="0"; filename="{name}.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + data
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    headers = {
        "Host": host,
        "Authorization": f"Bearer {token}",
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Apollo-Require-Preflight": "true",
    }
    try:
        r = await http(API_PORT, "POST", "/graphql", headers, b"".join(parts))
    except HttpFail as f:
        return None, f.code
    return classify(r)


async def fetch_url(url, timeout=TIMEOUT):
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    return await http(u.port or 80, "GET", path, {"Host": u.netloc}, b"", timeout)


# ---------------------------------------------------------------- services


def pidfile(name, pid):
    path = os.path.join(WORK, "pids", f"{name}.pid")
    if pid is None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    else:
        with open(path, "w") as f:
            f.write(str(pid))


async def run(*cmd, check=True, timeout=120):
    p = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, stdin=subprocess.DEVNULL
    )
    out, _ = await asyncio.wait_for(p.communicate(), timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {out.decode(errors='replace')[-2000:]}")
    return out.decode(errors="replace")


async def wait_port(port, secs):
    end = now() + secs
    while now() < end:
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return True
        except OSError:
            await asyncio.sleep(0.05)
    return False


def alive(pid):
    """True while `pid` runs (a zombie or a vanished process is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def proc_alive(p):
    return p is not None and p.returncode is None


class Services:
    def __init__(self):
        self.redis = None
        self.weed_pids = []
        self.server = None
        self.lock_psql = None
        self.pg_up = False
        self.server_env = dict(
            ENV,
            AGGIOS_DATA_DIR=os.path.join(WORK, "data"),
            AGGIOS_SERVER_HOST="127.0.0.1",
            AGGIOS_SERVER_PORT=str(API_PORT),
            AGGIOS_SERVER_BASE_DOMAIN="localhost",
            AGGIOS_LOG_LEVEL="warn",
            # Eight clients looping as one user from one address.
            AGGIOS_RATE_LIMITS_ENABLED="false",
            # The verifier looks writes up 50 ids to a query (aliased root
            # fields); the default operation limits (15 aliases, 10 root
            # fields) would refuse it and leave every write unverified.
            AGGIOS_LIMITS_MAX_ALIASES="50",
            AGGIOS_LIMITS_MAX_ROOT_FIELDS="50",
            AGGIOS_DATABASE_URL=PG_URL,
            AGGIOS_DATABASE_MIGRATION_URL=PG_URL,
            AGGIOS_REDIS_URL=f"redis://127.0.0.1:{REDIS_PORT}",
            AGGIOS_STORAGE_BACKEND="s3",
            AGGIOS_STORAGE_S3_ENDPOINT=f"http://127.0.0.1:{S3_PORT}",
            AGGIOS_STORAGE_S3_BUCKET="aggios",
            AGGIOS_STORAGE_S3_ACCESS_KEY_ID="aggios",
            AGGIOS_STORAGE_S3_SECRET_ACCESS_KEY="aggios-secret",
            AGGIOS_STORAGE_URL_TTL_SECS="3600",
        )
        # Run it as deployed (the Dockerfile sets neither): with RUST_BACKTRACE
        # on, every internal error captures and symbolises a backtrace, which
        # costs the server a few hundred MiB of RSS the first time.
        if not ENV.get("FAULTS_KEEP_BACKTRACE"):
            for k in ("RUST_BACKTRACE", "RUST_LIB_BACKTRACE"):
                self.server_env.pop(k, None)

    # PostgreSQL: a private cluster, trust auth, owned by the postgres user when run as root.
    async def pg_init(self):
        await run(*AS_PG, f"{PG_BIN}/initdb", "-D", PG_DATA, "-A", "trust", "-U", "postgres", "-E", "UTF8")
        with open(os.path.join(PG_DATA, "postgresql.conf"), "a") as f:
            f.write(
                f"\nport = {PG_PORT}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{os.path.join(WORK, 'pg')}'\nmax_connections = 100\n"
            )

    async def pg_start(self):
        await run(*AS_PG, f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-l", os.path.join(WORK, "pg", "log"), "-w", "start")
        self.pg_up = True

    async def pg_stop(self, mode):
        await run(*AS_PG, f"{PG_BIN}/pg_ctl", "-D", PG_DATA, "-m", mode, "-w", "stop")
        self.pg_up = False

    async def psql(self, sql, db="aggios"):
        return await run("psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", db, "-c", sql)

    # Redis: nothing saved, so a restart is empty.
    async def redis_start(self):
        self.redis = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            stdout=open(os.path.join(WORK, "redis.log"), "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        pidfile("redis", self.redis.pid)
        if not await wait_port(REDIS_PORT, 10):
            raise RuntimeError("redis-server did not start")

    async def redis_kill(self):
        self.redis.send_signal(signal.SIGKILL)
        await self.redis.wait()
        pidfile("redis", None)

    # SeaweedFS through the repository's own starter.
    async def weed_start(self):
        out = await run(
            "bash", "-c",
            f'. scripts/seaweedfs.sh && start_seaweedfs {shlex.quote(os.path.join(WORK, "s3"))} {S3_PORT} aggios aggios aggios-secret && echo "WEED_PID=$WEED_PID"',
            timeout=90,
        )
        self.weed_pids = [int(out.strip().splitlines()[-1].split("=")[1])]
        pidfile("weed", self.weed_pids[0])

    async def weed_kill(self, sig=signal.SIGKILL):
        for pid in self.weed_pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = now() + 15
        while now() < end and any(alive(p) for p in self.weed_pids):
            await asyncio.sleep(0.05)
        if any(alive(p) for p in self.weed_pids):
            for pid in self.weed_pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        pidfile("weed", None)
        self.weed_pids = []
        # A killed Go process's leader turns zombie before its other threads
        # (and so its listeners) are gone: wait for the port to refuse.
        end = now() + 10
        while await wait_port(S3_PORT, 0.05):
            if now() > end:
                raise RuntimeError(f"S3 still answers on {S3_PORT} 10 s after its process was killed")
            await asyncio.sleep(0.05)

    async def migrate(self):
        p = await asyncio.create_subprocess_exec(
            BIN, "migrate", "up", env=self.server_env,
            stdout=open(SERVER_LOG, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        if await p.wait() != 0:
            raise RuntimeError(f"aggios migrate up failed; see {SERVER_LOG}")

    async def server_start(self):
        with open(SERVER_LOG, "ab") as f:
            f.write(f"\n==== serve started at +{now() - RUN_START:.1f}s ====\n".encode())
        self.server = await asyncio.create_subprocess_exec(
            BIN, "serve", env=self.server_env,
            stdout=open(SERVER_LOG, "ab"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        pidfile("server", self.server.pid)
        end = now() + 60
        while now() < end:
            if self.server.returncode is not None:
                raise RuntimeError(f"aggios serve exited {self.server.returncode}; see {SERVER_LOG}")
            try:
                r = await http(API_PORT, "GET", "/healthz", {"Host": "localhost"}, timeout=2)
                if r.status == 200:
                    return
            except HttpFail:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("aggios serve did not answer /healthz within 60 s")

    def server_pid(self):
        return self.server.pid if proc_alive(self.server) else None

    async def stop_all(self):
        if self.lock_psql and self.lock_psql.returncode is None:
            self.lock_psql.kill()
        if proc_alive(self.server):
            self.server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.server.wait(), 35)
            except asyncio.TimeoutError:
                self.server.kill()
                await self.server.wait()
        pidfile("server", None)
        if proc_alive(self.redis):
            self.redis.kill()
            await self.redis.wait()
        pidfile("redis", None)
        if self.weed_pids:
            await self.weed_kill(signal.SIGTERM)
        if self.pg_up:
            try:
                await self.pg_stop("fast")
            except Exception as e:  # noqa: BLE001 - the shell's trap stops it harder
                log(f"pg_ctl stop: {e}")


SVC = Services()


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


# ---------------------------------------------------------------- the run


class Phase:
    def __init__(self, idx, name):
        self.idx, self.name = idx, name
        self.records = []  # (op, t0, t1, code or None)
        self.readyz = []  # (code, seconds)
        self.notes = []
        self.fault_at = self.heal_at = None
        self.last_failure = None
        self.t0 = self.t_end = None
        self.rss_before = self.rss_peak = self.rss_end = None
        self.inflight_uploads = 0
        self.signal_at = None
        self.conns = None


class Agency:
    def __init__(self, sub):
        self.sub = sub
        self.host = f"{sub}.localhost"
        self.email = f"owner@{sub}.test"
        self.token = None
        self.seed_client = self.seed_project = None


LEDGER = []  # acknowledged writes: dict(kind, id, name, phase, agency, sha)
FAILED = []  # writes reported failed: dict(kind, name, phase, agency, code)
CURRENT = None  # the phase running
RSS_SERIES = []  # (t, server pid, VmRSS KiB), every 200 ms from the first phase to the end of the final idle
PHASES = []


def record(ph, op, t0, code):
    t1 = now()
    ph.records.append((op, t0, t1, code))
    if code is not None:
        ph.last_failure = t1


async def worker(ph, w, ag, stop, rng):
    seq = 0
    my_clients, my_projects = [], []
    while not stop.is_set():
        seq += 1
        op = rng.choice(("createClient", "createProject", "uploadDocument", "clients", "me"))
        name = f"fc-{ph.idx}-{w}-{seq}"
        t0 = now()
        if op == "createClient":
            j, code = await gql(ag.host, ag.token, "mutation($i: CreateClientInput!) { createClient(input: $i) { id } }", {"i": {"name": name}})
            if code is None:
                my_clients.append(j["data"]["createClient"]["id"])
                LEDGER.append(dict(kind="client", id=my_clients[-1], name=name, phase=ph.idx, agency=ag))
        elif op == "createProject":
            client = my_clients[-1] if my_clients else ag.seed_client
            j, code = await gql(ag.host, ag.token, "mutation($i: CreateProjectInput!) { createProject(input: $i) { id } }", {"i": {"clientId": client, "name": name}})
            if code is None:
                my_projects.append(j["data"]["createProject"]["id"])
                LEDGER.append(dict(kind="project", id=my_projects[-1], name=name, phase=ph.idx, agency=ag))
        elif op == "uploadDocument":
            project = my_projects[-1] if my_projects else ag.seed_project
            data = rng.randbytes(UPLOAD_BYTES)
            sha = hashlib.sha256(data).hexdigest()
            ph.inflight_uploads += 1
            try:
                j, code = await upload(ag.host, ag.token, project, name, data)
            finally:
                ph.inflight_uploads -= 1
            if code is None:
                doc = j["data"]["uploadDocument"]
                LEDGER.append(dict(kind="document", id=doc["id"], name=name, phase=ph.idx, agency=ag, sha=sha))
                if doc["checksumSha256"] != sha:
                    ph.notes.append(f"uploadDocument {doc['id']} answered checksum {doc['checksumSha256']} for {sha}")
        elif op == "clients":
            j, code = await gql(ag.host, ag.token, "{ clients(first: 20) { nodes { id name } } }")
        else:
            j, code = await gql(ag.host, ag.token, "{ me { id email } }")
        if code is not None and op.startswith(("create", "upload")):
            kind = {"createClient": "client", "createProject": "project", "uploadDocument": "document"}[op]
            FAILED.append(dict(kind=kind, name=name, phase=ph.idx, agency=ag, code=code))
        record(ph, op, t0, code)
        if code is not None:
            await asyncio.sleep(BACKOFF)  # a client backs off a little after a failure


async def sampler(stop):
    """RSS every 200 ms into the current phase's peak; /readyz every second."""

    async def rss_loop():
        while not stop.is_set():
            pid = SVC.server_pid()
            ph = CURRENT
            r = rss_kib(pid) if pid else None
            if r:
                RSS_SERIES.append((now(), pid, r))
                if ph is not None:
                    ph.rss_peak = max(ph.rss_peak or 0, r)
            await asyncio.sleep(0.2)

    async def readyz_loop():
        while not stop.is_set():
            ph = CURRENT
            t0 = now()
            try:
                r = await http(API_PORT, "GET", "/readyz", {"Host": "localhost"}, timeout=5)
                code = str(r.status)
            except HttpFail as f:
                code = f.code
            if ph is not None and ph is CURRENT:
                ph.readyz.append((code, now() - t0))
            await asyncio.sleep(max(0, 1 - (now() - t0)))

    await asyncio.gather(rss_loop(), readyz_loop())


async def wait_for_inflight_upload(ph, secs=5):
    end = now() + secs
    while ph.inflight_uploads == 0 and now() < end:
        await asyncio.sleep(0.001)
    return ph.inflight_uploads


# Faults: each sets ph.fault_at and ph.heal_at (when the dependency is back).


async def fault_redis(ph):
    ph.fault_at = now()
    await SVC.redis_kill()
    await asyncio.sleep(REDIS_OUTAGE)
    await SVC.redis_start()
    ph.heal_at = now()
    ph.notes.append(f"Redis SIGKILLed, restarted empty {ph.heal_at - ph.fault_at:.1f} s later")


def fault_pg(mode):
    async def f(ph):
        ph.fault_at = now()
        await SVC.pg_stop(mode)
        stopped = now()
        await asyncio.sleep(OUTAGE)
        await SVC.pg_start()
        ph.heal_at = now()
        ph.notes.append(f"pg_ctl stop -m {mode} took {stopped - ph.fault_at:.1f} s; down {ph.heal_at - stopped:.1f} s (start included)")

    return f


async def fault_weed(ph):
    ph.fault_at = now()
    await SVC.weed_kill()
    await asyncio.sleep(OUTAGE)
    await SVC.weed_start()
    ph.heal_at = now()
    ph.notes.append(f"SeaweedFS SIGKILLed, S3 answering again {ph.heal_at - ph.fault_at:.1f} s later (restart on the same dir)")


async def fault_lock(ph):
    ph.fault_at = now()
    SVC.lock_psql = await asyncio.create_subprocess_exec(
        "psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(PG_PORT), "-U", "postgres", "-d", "aggios",
        "-c", "BEGIN; LOCK TABLE clients IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(12); COMMIT;",
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )
    pidfile("lock-psql", SVC.lock_psql.pid)
    _, err = await SVC.lock_psql.communicate()
    pidfile("lock-psql", None)
    ph.heal_at = now()
    ph.notes.append(f"ACCESS EXCLUSIVE on clients held {ph.heal_at - ph.fault_at:.1f} s (psql exit {SVC.lock_psql.returncode}{', ' + err.decode().strip() if err.strip() else ''})")


async def fault_server(ph, sig):
    n = await wait_for_inflight_upload(ph)
    ph.fault_at = now()
    SVC.server.send_signal(sig)
    grace_note = ""
    if sig == signal.SIGTERM:
        try:
            rc = await asyncio.wait_for(SVC.server.wait(), 40)
            grace_note = f"; exited {rc} after {now() - ph.fault_at:.1f} s"
        except asyncio.TimeoutError:
            SVC.server.kill()
            await SVC.server.wait()
            grace_note = "; still running 40 s after SIGTERM, SIGKILLed"
    else:
        await SVC.server.wait()
    pidfile("server", None)
    down = now()
    ph.signal_at = ph.fault_at
    await asyncio.sleep(1)
    await SVC.server_start()
    ph.heal_at = now()
    ph.notes.append(
        f"{signal.Signals(sig).name} with {n} upload(s) in flight{grace_note}; restarted, /healthz up {ph.heal_at - down:.1f} s after the old process was gone"
    )


async def fault_kill(ph):
    await fault_server(ph, signal.SIGKILL)


async def fault_term(ph):
    await fault_server(ph, signal.SIGTERM)


def open_conns(n, payload):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", API_PORT))
            if payload:
                s.sendall(payload)
        except OSError:
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    return socks


def count_closed(socks, state):
    """state[i]: None while open, else 'eof', 'reset' or 'answered'."""
    for i, s in enumerate(socks):
        if state[i] is not None and state[i] != "answered":
            continue
        try:
            d = s.recv(65536)
            if not d:
                state[i] = "eof"
            elif state[i] is None:
                state[i] = "answered"
        except BlockingIOError:
            pass
        except OSError:
            state[i] = "reset"
    return sum(1 for x in state if x is not None)


async def fault_conns(ph):
    ph.fault_at = now()
    idle = open_conns(IDLE_CONNS, b"")
    half = open_conns(HALF_CONNS, b"POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n")
    opened = now()
    si, sh = [None] * len(idle), [None] * len(half)
    res = {"idle_opened": len(idle), "half_opened": len(half)}
    for mark in (20, HOLD_SECS):
        await asyncio.sleep(max(0, opened + mark - now()))
        res[f"idle_closed_{int(mark)}"] = count_closed(idle, si)
        res[f"half_closed_{int(mark)}"] = count_closed(half, sh)
        res[f"rss_{int(mark)}"] = rss_kib(SVC.server_pid()) if SVC.server_pid() else None
    res["answered"] = sum(1 for x in si + sh if x == "answered")
    for s in idle + half:
        s.close()
    ph.heal_at = now()
    ph.conns = res
    ph.notes.append(
        f"held {len(idle)} idle and {len(half)} half-sent connections for {HOLD_SECS:.0f} s: closed by the server after 20 s: "
        f"{res['idle_closed_20']} idle, {res['half_closed_20']} half-sent; after {HOLD_SECS:.0f} s: "
        f"{res[f'idle_closed_{int(HOLD_SECS)}']} idle, {res[f'half_closed_{int(HOLD_SECS)}']} half-sent ({res['answered']} got a response first)"
    )


PHASE_LIST = [
    ("1 baseline", None),
    ("2 Redis SIGKILL, restarted empty", fault_redis),
    ("3 PostgreSQL stop -m fast", fault_pg("fast")),
    ("4 PostgreSQL stop -m immediate", fault_pg("immediate")),
    ("5 storage (SeaweedFS) SIGKILL", fault_weed),
    ("6 ACCESS EXCLUSIVE lock on clients 12 s", fault_lock),
    ("7 server SIGKILL mid-upload", fault_kill),
    ("8 server SIGTERM mid-upload", fault_term),
    (f"9 {IDLE_CONNS} idle + {HALF_CONNS} half-sent conns", fault_conns),
]


async def run_phase(idx, name, fault, agencies, seed):
    global CURRENT
    ph = Phase(idx, name)
    PHASES.append(ph)
    pid = SVC.server_pid()
    ph.rss_before = rss_kib(pid) if pid else None
    ph.rss_peak = ph.rss_before
    CURRENT = ph
    ph.t0 = now()
    log(f"phase {name}")
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(worker(ph, w, agencies[w % len(agencies)], stop, random.Random(seed * 1000 + idx * 100 + w)))
        for w in range(CLIENTS)
    ]
    if fault is not None:
        await asyncio.sleep(PRE)
        await fault(ph)
    min_end = max(ph.t0 + PHASE_SECS, (ph.heal_at or 0) + (POST if fault else 0))
    while True:
        t = now()
        if t >= min_end:
            if fault is None or ph.last_failure is None or t - ph.last_failure >= QUIET or t - ph.heal_at >= RECOVERY_CAP:
                break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*tasks)
    ph.t_end = now()
    pid = SVC.server_pid()
    ph.rss_end = rss_kib(pid) if pid else None
    oks = sum(1 for r in ph.records if r[3] is None)
    log(f"  {len(ph.records)} requests, {oks} ok, {ph.t_end - ph.t0:.1f} s")
    return ph


# ---------------------------------------------------------------- setup, checks


async def must(host, token, query, variables=None, what=""):
    for attempt in range(5):
        j, code = await gql(host, token, query, variables)
        if code is None:
            return j["data"]
        await asyncio.sleep(1)
    raise RuntimeError(f"{what or query} failed: {code} {j}")


async def setup_agency(sub):
    ag = Agency(sub)
    d = await must(
        "localhost", None,
        "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
        {"i": {"agencyName": f"Faults {sub}", "subdomain": sub, "email": ag.email, "password": PASSWORD, "firstName": "F", "lastName": "R"}},
        "signUp",
    )
    ag.token = d["signUp"]["accessToken"]
    d = await must(ag.host, ag.token, "mutation { createClient(input: {name: \"seed\"}) { id } }")
    ag.seed_client = d["createClient"]["id"]
    d = await must(ag.host, ag.token, "mutation($c: ID!) { createProject(input: {clientId: $c, name: \"seed\"}) { id } }", {"c": ag.seed_client})
    ag.seed_project = d["createProject"]["id"]
    return ag


async def logged_out_token(ag):
    """A second session of the owner, logged out; returns its access token."""
    d = await must(ag.host, None, "mutation($i: LoginInput!) { login(input: $i) { accessToken } }", {"i": {"email": ag.email, "password": PASSWORD}}, "login")
    tok = d["login"]["accessToken"]
    await must(ag.host, tok, "mutation { logout }", what="logout")
    return tok


async def token_check(ag, tok):
    j, code = await gql(ag.host, tok, "{ me { id } }")
    return "accepted" if code is None else f"refused ({code})"


async def verify():
    """Every acknowledged write, looked up by id through the API (documents
    also downloaded and hashed); then which failed writes exist after all.
    Ids go 50 to a query (aliases); a batch with a missing id answers
    NOT_FOUND as a whole, and is then checked one id at a time."""
    found, lost, unverified = Counter(), [], []
    fields = {"client": "client(id: {id}) {{ id name }}", "project": "project(id: {id}) {{ id name }}",
              "document": "document(id: {id}) {{ id name checksumSha256 downloadUrl {{ url }} }}"}
    sem = asyncio.Semaphore(4)

    async def judge(w, x):
        """-> None when settled (found or lost), else the failure code to retry on."""
        if x["name"] != w["name"]:
            lost.append((w, f"name {x['name']!r}"))
            return None
        if w["kind"] != "document":
            found[w["phase"]] += 1
            return None
        if x["checksumSha256"] != w["sha"]:
            lost.append((w, "checksum differs"))
            return None
        try:
            r = await fetch_url(x["downloadUrl"]["url"])
        except HttpFail as f:
            return f.code
        if r.status == 200:
            if hashlib.sha256(r.body).hexdigest() == w["sha"]:
                found[w["phase"]] += 1
            else:
                lost.append((w, f"downloaded bytes differ ({len(r.body)} bytes)"))
            return None
        if r.status == 404:
            lost.append((w, "bytes not in storage (404)"))
            return None
        return f"download HTTP {r.status}"

    async def check(batch):
        """Settles every write of `batch` (one agency, one kind)."""
        ag = batch[0]["agency"]
        q = "{ " + " ".join(f"x{i}: " + fields[w["kind"]].format(id=json.dumps(w["id"])) for i, w in enumerate(batch)) + " }"
        pending = list(enumerate(batch))
        for attempt in range(4):
            async with sem:
                j, code = await gql(ag.host, ag.token, q)
            if code == "NOT_FOUND" and len(batch) > 1:
                break
            if code == "NOT_FOUND":
                lost.append((batch[0], "row not found"))
                return
            if code is None:
                retry = await asyncio.gather(*(judge(w, j["data"][f"x{i}"]) for i, w in pending))
                pending = [(i, w) for (i, w), c in zip(pending, retry) if c is not None]
                if not pending:
                    return
                code = retry[-1]
            await asyncio.sleep(1)
        else:
            unverified.extend((w, code) for _, w in pending)
            return
        await asyncio.gather(*(check([w]) for _, w in pending))

    groups = defaultdict(list)
    for w in LEDGER:
        groups[(w["agency"].sub, w["kind"])].append(w)
    batches = [g[i : i + 50] for g in groups.values() for i in range(0, len(g), 50)]
    await asyncio.gather(*(check(b) for b in batches))

    # Failed writes that exist: list every row named fc-* and match by name.
    existing = defaultdict(set)  # (agency sub, kind) -> names
    lists = {"client": "clients", "project": "projects", "document": "documents"}
    for ag in AGENCIES:
        for kind, field in lists.items():
            after = None
            while True:
                q = f"query($a: String) {{ x: {field}(first: 100, after: $a, filter: {{nameContains: \"fc-\"}}) {{ pageInfo {{ hasNextPage endCursor }} nodes {{ name }} }} }}"
                d = await must(ag.host, ag.token, q, {"a": after}, f"listing {field}")
                existing[(ag.sub, kind)].update(n["name"] for n in d["x"]["nodes"])
                if not d["x"]["pageInfo"]["hasNextPage"]:
                    break
                after = d["x"]["pageInfo"]["endCursor"]
    committed = Counter()
    committed_detail = []
    for f in FAILED:
        if f["name"] in existing[(f["agency"].sub, f["kind"])]:
            committed[f["phase"]] += 1
            committed_detail.append(f)
    acked_names = Counter((w["agency"].sub, w["kind"], w["name"]) for w in LEDGER)
    total_rows = sum(len(v) for v in existing.values())
    return found, lost, unverified, committed, committed_detail, total_rows, acked_names


# ---------------------------------------------------------------- report


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * len(xs) + 0.5)) - 1))
    return xs[k]


def ms(x):
    return "–" if x is None else (f"{x * 1000:.0f}" if x < 10 else f"{x:.1f} s")


def mib(k):
    return "–" if k is None else f"{k / 1024:.0f}"


def rss_after(ph, secs=60):
    """RSS of the same server process `secs` after the phase's load ended, or
    why there is none."""
    end_pid = next((p for t, p, _ in reversed(RSS_SERIES) if t <= ph.t_end), None)
    near = [x for x in RSS_SERIES if abs(x[0] - (ph.t_end + secs)) <= 1]
    if not near:
        return None, "–"
    t, pid, kib = min(near, key=lambda x: abs(x[0] - (ph.t_end + secs)))
    if pid != end_pid:
        return None, "restarted"
    ok = ph.rss_before is not None and kib - ph.rss_before <= 64 * 1024
    return kib, f"{kib / 1024:.0f} {'✓' if ok else '✗'}"


def phase_row(ph, found, lost_by_phase, committed):
    recs = ph.records
    ok = [r[2] - r[1] for r in recs if r[3] is None]
    bad = [r[2] - r[1] for r in recs if r[3] is not None]
    codes = Counter(r[3] for r in recs if r[3] is not None)
    codes_s = ", ".join(f"{c} {n}" for c, n in codes.most_common()) or "–"
    allx = ok + bad
    if ph.heal_at is not None:
        first_ok = min((r[2] for r in recs if r[3] is None and r[2] >= ph.heal_at), default=None)
        last_bad = max((r[2] for r in recs if r[3] is not None and r[2] >= ph.heal_at), default=None)
        kinds = {r[0] for r in recs}
        per_kind = [min((r[2] for r in recs if r[0] == k and r[3] is None and r[2] >= ph.heal_at), default=None) for k in kinds]
        all_ok = None if None in per_kind else max(per_kind)
        f = lambda t: "never" if t is None else f"{t - ph.heal_at:.1f}"
        rec = f"{f(first_ok)} / {f(all_ok)} / {'none' if last_bad is None else f'{last_bad - ph.heal_at:.1f}'}"
    else:
        rec = "–"
    acked = sum(1 for w in LEDGER if w["phase"] == ph.idx)
    rz = Counter(c for c, _ in ph.readyz)
    rz_s = ", ".join(f"{c}×{n}" for c, n in sorted(rz.items())) or "–"
    rz_max = max((s for _, s in ph.readyz), default=None)
    return (
        f"| {ph.name} | {ph.t_end - ph.t0:.0f} | {len(recs)} | {len(ok)} | {sum(1 for x in ok if x >= 1)} | {codes_s} | {ms(pct(ok, 50))} / {ms(pct(ok, 99))} | "
        f"{ms(pct(bad, 50))} / {ms(pct(bad, 99))} | {ms(max(allx) if allx else None)} | {rec} | "
        f"{mib(ph.rss_before)} / {mib(ph.rss_peak)} / {mib(ph.rss_end)} / {rss_after(ph)[1]} | {acked} / {found[ph.idx]} / {lost_by_phase[ph.idx]} | "
        f"{committed[ph.idx]} | {rz_s} (max {ms(rz_max)}) |"
    )


AGENCIES = []


async def main():
    global CURRENT
    t_start = now()
    os.makedirs(os.path.join(WORK, "pids"), exist_ok=True)
    log("starting private PostgreSQL, Redis and SeaweedFS")
    await SVC.pg_init()
    await SVC.pg_start()
    await SVC.psql("CREATE DATABASE aggios", db="postgres")
    await SVC.redis_start()
    await SVC.weed_start()
    await SVC.migrate()
    await SVC.server_start()
    log("server up; signing up two agencies")
    AGENCIES.extend([await setup_agency("faulta"), await setup_agency("faultb")])
    seed = int(ENV.get("SEED", "1"))
    stop_sampler = asyncio.Event()
    sampler_task = asyncio.create_task(sampler(stop_sampler))

    revocation = []
    for i, (name, fault) in enumerate(PHASE_LIST, start=1):
        if i == 2:  # a logged-out token, checked before Redis goes away...
            tok_ag = AGENCIES[0]
            tok = await logged_out_token(tok_ag)
            revocation.append(("logged-out access token, before the Redis restart", await token_check(tok_ag, tok)))
        await run_phase(i, name, fault, AGENCIES, seed)
        if i == 2:  # ...and after it came back empty
            revocation.append(("the same token, after Redis was restarted empty", await token_check(tok_ag, tok)))
    load_end = now()
    CURRENT = None
    rss_phase9_before = PHASES[-1].rss_before
    log(f"load done; {FINAL_IDLE:.0f} s idle for the RSS check")
    await asyncio.sleep(FINAL_IDLE)
    rss_final = rss_kib(SVC.server_pid())
    await asyncio.sleep(1.5)  # so that the series covers phase 9's end + 60 s
    stop_sampler.set()
    await sampler_task
    with open(os.path.join(WORK, "rss.csv"), "w") as f:
        f.write("seconds,pid,vmrss_kib\n")
        f.writelines(f"{t - RUN_START:.2f},{pid},{kib}\n" for t, pid, kib in RSS_SERIES)

    log(f"verifying {len(LEDGER)} acknowledged writes")
    t_v = now()
    found, lost, unverified, committed, committed_detail, total_rows, _ = await verify()
    verify_secs = now() - t_v
    lost_by_phase = Counter(w["phase"] for w, _ in lost)

    with open(SERVER_LOG, "rb") as f:
        server_log = f.read().decode(errors="replace")
    panics = [l for l in server_log.splitlines() if "panicked" in l]

    out = []
    out.append(f"# Fault run — {time.strftime('%Y-%m-%d %H:%M:%S')} — commit {ENV.get('FAULTS_COMMIT', '?')}\n")
    out.append(
        f"{CLIENTS} clients (2 agencies), mixed createClient / createProject / uploadDocument (2 KiB) / clients(first: 20) / me, "
        f"one connection per request, a client waits {BACKOFF * 1000:.0f} ms after a failure, client timeout {TIMEOUT:.0f} s (TIMEOUT). Release build on a private PostgreSQL 15, Redis and SeaweedFS S3; "
        f"{os.cpu_count()} cores shared by all of them and this driver; load average at the start {LOADAVG_START:.1f}, at the end {os.getloadavg()[0]:.1f}.\n"
    )
    out.append(
        "| phase | load s | requests | ok | ok ≥ 1 s | failures by code | ok p50 / p99 ms | failed p50 / p99 ms | max ms | recovery s: first ok / every op ok / last failure, after heal | RSS MiB before / peak / end / 60 s after | writes acked / found / lost | failed but committed | /readyz answers |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for ph in PHASES:
        out.append(phase_row(ph, found, lost_by_phase, committed))
    tot_acked, tot_found = len(LEDGER), sum(found.values())
    out.append("")
    out.append(f"**Acknowledged writes: {tot_acked}; found: {tot_found}; lost: {len(lost)}; unverifiable: {len(unverified)}.** "
               f"Writes answered as failed: {len(FAILED)}, of which committed anyway: {sum(committed.values())}.")
    out.append("")
    out.append("| check | result |")
    out.append("|---|---|")
    for what, res in revocation:
        out.append(f"| {what} | {res} |")
    c = PHASES[-1].conns or {}
    if c:
        out.append(f"| {c['idle_opened']} idle connections closed by the server, after 20 s / {HOLD_SECS:.0f} s | {c['idle_closed_20']} / {c[f'idle_closed_{int(HOLD_SECS)}']} |")
        out.append(f"| {c['half_opened']} half-sent request heads closed by the server, after 20 s / {HOLD_SECS:.0f} s | {c['half_closed_20']} / {c[f'half_closed_{int(HOLD_SECS)}']} |")
        out.append(f"| server RSS with them open, at 20 s / {HOLD_SECS:.0f} s (MiB) | {mib(c['rss_20'])} / {mib(c[f'rss_{int(HOLD_SECS)}'])} |")
    ok64 = rss_final is not None and rss_phase9_before is not None and rss_final - rss_phase9_before <= 64 * 1024
    out.append(
        f"| server RSS {FINAL_IDLE:.0f} s after the last load ended, vs before phase 9 (the process running since the restart of phase 8) (MiB) | "
        f"{mib(rss_final)} vs {mib(rss_phase9_before)}: {'within' if ok64 else 'NOT within'} 64 MiB |"
    )
    procs = []
    for t, pid, kib in RSS_SERIES:
        if not procs or procs[-1][0] != pid:
            procs.append([pid, kib, kib, kib])
        procs[-1][2] = max(procs[-1][2], kib)
        procs[-1][3] = kib
    for i, (pid, first, peak, last) in enumerate(procs, start=1):
        end = "after the final idle" if i == len(procs) else "just before it was signalled"
        out.append(f"| server process {i}: RSS first sample / peak / last sample, {end} (MiB) | {mib(first)} / {mib(peak)} / {mib(last)} |")
    out.append(f"| server log lines with `panicked` | {len(panics)} |")
    out.append("")
    out.append("Phase notes:")
    for ph in PHASES:
        for n in ph.notes:
            out.append(f"- {ph.name}: {n}")
        if ph.signal_at is not None:
            fl = [r for r in ph.records if r[1] < ph.signal_at < r[2]]
            fates = Counter((r[0], r[3] or "ok") for r in fl)
            out.append(
                f"- {ph.name}: requests in flight at the signal: {len(fl)}; their answers: "
                + (", ".join(f"{op} {code} ×{n}" for (op, code), n in sorted(fates.items())) or "none")
            )
    for w, why in lost[:30]:
        out.append(f"- LOST {w['kind']} {w['id']} ({w['name']}, phase {w['phase']}): {why}")
    for w, why in unverified[:30]:
        out.append(f"- UNVERIFIED {w['kind']} {w['id']} ({w['name']}, phase {w['phase']}): last {why}")
    for f in committed_detail[:30]:
        out.append(f"- failed but committed: {f['kind']} {f['name']} (phase {f['phase']}, answered {f['code']})")
    for l in panics[:10]:
        out.append(f"- panic: `{l.strip()[:300]}`")
    out.append("")
    out.append(
        "Columns: failures are `errors[0].extensions.code`, else `HTTP_<status>`; TIMEOUT = no answer within the client timeout, "
        "CONN_REFUSED / CONN_RESET / EOF = the connection was refused, reset or closed without an answer. "
        "Recovery is measured from the heal (the dependency answering again, the lock released, the new server answering /healthz): "
        "the first successful request to complete, the first moment every operation kind had succeeded, the last failure. "
        "RSS (VmRSS, sampled every 200 ms): before the phase, its peak, right after its load stopped, and of the same process 60 s after "
        "its load stopped — under the load of the phases that follow, except for the last phase, whose 60 s are a final idle; "
        "✓ within 64 MiB of before, ✗ not, restarted = the process was replaced by then. "
        "Failed but committed = a write answered with an error (or no answer) whose uniquely named row exists at the end."
    )
    out.append(
        f"\nLoad {load_end - t_start:.0f} s including setup; verification {verify_secs:.0f} s "
        f"({total_rows} rows named fc-* listed); whole driver {now() - t_start:.0f} s."
    )
    text = "\n".join(out) + "\n"
    print(text)
    with open(RESULTS, "w") as f:
        f.write(text)
    log(f"results written to {RESULTS}")
    return 1 if (lost or unverified or panics) else 0


async def amain():
    try:
        return await main()
    finally:
        await SVC.stop_all()


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
