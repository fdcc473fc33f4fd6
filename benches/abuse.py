#!/usr/bin/env python3
"""What each abuse case of the OWASP GraphQL cheat sheet costs the server to
refuse (issue 12), side by side with a normal `{ __typename }` in one run.

Builds and starts the release binary on the embedded default in a temporary
directory, signs up one agency, then for each case sends it N times from C
connections at once while one more connection keeps sending `{ __typename }`,
and prints one Markdown table row per case:

- the answer's code (every send must get the same one);
- the time per answer at the client, p50 and p99 (loopback, keep-alive);
- the server's CPU time per answer (user + system, from /proc/PID/stat);
- the server's RSS before the case, at its peak (sampled every 10 ms) and
  2 s after it;
- the p50 / p99 of the `{ __typename }` answered meanwhile.

The last row sends the same 1 MB document to a second server whose token
limit is raised past it, so that it is parsed, validated and run: what the
token limit saves.

    python3 benches/abuse.py [--binary PATH] [-n 200] [-c 4]
"""

import argparse
import http.client
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time

HOST = "bench.localhost"
TYPENAME = json.dumps({"query": "{ __typename }"}).encode()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_secs(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(binary, data, extra_env=None):
    env = dict(os.environ, AGGIOS_DATA_DIR=data, AGGIOS_SERVER_PORT="0", AGGIOS_LOG_LEVEL="error", **(extra_env or {}))
    server = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in server.stdout:
        if "listening on" in line:
            return server, int(line.rsplit(":", 1)[1].split("/")[0])
    raise SystemExit("the server did not start")


class Client:
    def __init__(self, port, token=None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.headers = {"content-type": "application/json", "host": HOST}
        if token:
            self.headers["authorization"] = f"Bearer {token}"

    def post(self, body, host=None):
        headers = dict(self.headers, host=host or HOST)
        started = time.perf_counter()
        self.conn.request("POST", "/graphql", body=body, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        took = time.perf_counter() - started
        return resp.status, json.loads(payload), took


def sign_up(port):
    """A new agency `bench` on the API host: its owner's access token."""
    body = json.dumps({
        "query": "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }",
        "variables": {"i": {"agencyName": "Bench", "subdomain": "bench", "email": "owner@bench.com",
                            "password": "tundra velvet orbit 42", "firstName": "Olga", "lastName": "Owner"}}}).encode()
    return Client(port).post(body, host="localhost")[1]["data"]["signUp"]["accessToken"]


def code_of(answer):
    if isinstance(answer, list):
        answer = answer[0]
    errors = answer.get("errors")
    return errors[0].get("extensions", {}).get("code", "none") if errors else "ok"


def pct(values, p):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_case(server, port, token, body, n, c, typename_cpu=None):
    """N sends of `body` from `c` connections, with `{ __typename }` looping
    on one more; returns the figures of one table row. The server's CPU per
    answer leaves out the looping `{ __typename }` at `typename_cpu` each
    (unknown for the first case, which is `{ __typename }` itself)."""
    pid = server.pid
    codes, times, normal = [], [], []
    lock = threading.Lock()
    done = threading.Event()
    peak = [rss_mib(pid)]
    before = peak[0]

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mib(pid))
            time.sleep(0.01)

    def abuse(count):
        client = Client(port, token)
        for _ in range(count):
            status, answer, took = client.post(body)
            with lock:
                codes.append(f"{status} {code_of(answer)}")
                times.append(took)

    def probe():
        client = Client(port, token)
        while not done.is_set():
            _, answer, took = client.post(TYPENAME)
            assert answer.get("data", {}).get("__typename") == "Query", answer
            normal.append(took)

    sampler = threading.Thread(target=sample)
    prober = threading.Thread(target=probe)
    sampler.start()
    prober.start()
    cpu_before = cpu_secs(pid)
    workers = [threading.Thread(target=abuse, args=(n // c + (1 if i < n % c else 0),)) for i in range(c)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    cpu = cpu_secs(pid) - cpu_before
    done.set()
    sampler.join()
    prober.join()
    time.sleep(2)
    after = rss_mib(pid)
    distinct = sorted(set(codes))
    assert len(distinct) == 1, distinct
    if typename_cpu is None:
        per_answer = cpu / (n + len(normal))
    else:
        per_answer = max(0.0, cpu - typename_cpu * len(normal)) / n
    return {
        "code": distinct[0],
        "p50": pct(times, 50) * 1000,
        "p99": pct(times, 99) * 1000,
        "cpu": per_answer,
        "rss": (before, peak[0], after),
        "normal": (pct(normal, 50) * 1000, pct(normal, 99) * 1000, len(normal)),
    }


def cases():
    def q(text):
        return json.dumps({"query": text}).encode()

    aliases = " ".join(f"t{i}: tenant {{ subdomain }}" for i in range(5000))
    links = " ".join(f"l{i}: downloadUrl {{ url }}" for i in range(300))
    fifteen = " ".join(f"l{i}: downloadUrl {{ url }}" for i in range(15))
    fields = (1_000_000 - 4) // len("__typename ")
    megabyte = "{ " + "__typename " * fields + "}"
    cycle = "{ ...A } fragment A on Query { tenant { ...B } } fragment B on Tenant { ...C } fragment C on Tenant { ...B }"
    bomb = "query { ...F0 }" + "".join(f" fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(40))
    bomb += " fragment F40 on Query { __typename }"
    directives = "{ tenant { subdomain " + "@skip(if: false) " * 1000 + "} }"
    batch = json.dumps([{"query": 'mutation { createClient(input: { name: "Batched" }) { id } }'}] * 1000).encode()
    nested = "{ clients(first: 100) { edges { node { projects(first: 100) { documents(first: 100) { downloadUrl { url } } } } } } }"
    return [
        ("`{ __typename }` (normal)", TYPENAME),
        ("`{ tenant { subdomain } }` (normal)", q("{ tenant { subdomain } }")),
        ("5,000 aliases of a field", q("{ " + aliases + " }")),
        ("alias bomb on a list: 300 links per document", q("{ documents(first: 100) { edges { node { " + links + " } } } }")),
        ("the same at the alias limit: 15 links per document", q("{ documents(first: 100) { edges { node { " + fifteen + " } } } }")),
        ("1 MB document", q(megabyte)),
        ("fragment cycle", q(cycle)),
        ("fragments spreading the next twice, 40 deep", q(bomb)),
        ("1,000 directives", q(directives)),
        ("batch of 1,000 operations", batch),
        ("nested-list cost bomb (100 × 100 × 100 links)", q(nested)),
    ], q(megabyte)


def row(name, body, r):
    before, peak, after = r["rss"]
    p50, p99, count = r["normal"]
    return (f"| {name} | {len(body) / 1024:,.1f} | {r['code']} | {r['p50']:.2f} | {r['p99']:.2f} | {r['cpu'] * 1000:.3f} | "
            f"{before:.0f} / {peak:.0f} / {after:.0f} | {p50:.2f} / {p99:.2f} ({count}) |")


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--binary")
    ap.add_argument("-n", type=int, default=200, help="sends per case")
    ap.add_argument("-c", type=int, default=4, help="connections sending the case")
    args = ap.parse_args()
    binary = args.binary
    if not binary:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "aggios"], cwd=root, check=True)
        binary = os.path.join(os.path.abspath(os.path.join(root, target) if not os.path.isabs(target) else target), "release", "aggios")

    listed, megabyte = cases()
    print(f"{args.n} sends per case from {args.c} connections, `{{ __typename }}` looping on one more; "
          "times in ms, RSS in MiB (before / peak / 2 s after).\n")
    print("| case | body KiB | answer | p50 | p99 | server CPU per answer | RSS | `{ __typename }` meanwhile p50 / p99 (answers) |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as data:
        server, port = start(binary, data)
        try:
            token = sign_up(port)
            Client(port, token).post(json.dumps({"query": 'mutation { createClient(input: { name: "Acme" }) { id } }'}).encode())
            time.sleep(1)
            typename_cpu = None
            for name, body in listed:
                r = run_case(server, port, token, body, args.n, args.c, typename_cpu)
                typename_cpu = typename_cpu if typename_cpu is not None else r["cpu"]
                print(row(name, body, r), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=40)
    with tempfile.TemporaryDirectory() as data:
        # Without the token limit the same document is parsed, validated and run.
        raised = {"AGGIOS_LIMITS_MAX_TOKENS": "2000000", "AGGIOS_LIMITS_MAX_COST": "2000000"}
        server, port = start(binary, data, raised)
        try:
            token = sign_up(port)
            time.sleep(1)
            name = "the 1 MB document with `max_tokens` raised past it (parsed, validated, run)"
            print(row(name, megabyte, run_case(server, port, token, megabyte, args.n, args.c, typename_cpu)), flush=True)
        finally:
            server.terminate()
            server.wait(timeout=40)


if __name__ == "__main__":
    main()
