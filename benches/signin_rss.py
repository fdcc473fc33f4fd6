#!/usr/bin/env python3
"""RSS of the server under a burst of wrong sign-ins (issue 10, finding 7).

Starts the release binary on the embedded default in a temporary directory,
signs up one agency, then sends N wrong sign-ins C at a time, and prints the
server's RSS before, at the peak, and 60 s after the burst.

    python3 benches/signin_rss.py [--binary target/release/aggios] [-n 200] [-c 64]
"""

import argparse
import concurrent.futures as cf
import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def gql(port, query, variables, host="localhost", forwarded=None):
    body = json.dumps({"query": query, "variables": variables}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body, method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("host", host)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    ap = argparse.ArgumentParser()
    target = os.environ.get("CARGO_TARGET_DIR", "target")
    ap.add_argument("--binary", default=os.path.join(target, "release", "aggios"))
    ap.add_argument("-n", type=int, default=200)
    ap.add_argument("-c", type=int, default=64)
    ap.add_argument("--settle", type=int, default=60)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as data:
        # Every attempt is to be hashed: the per-address throttle would stop
        # the burst at 50, the sign-in rate limit at 60.
        env = dict(os.environ, AGGIOS_DATA_DIR=data, AGGIOS_SERVER_PORT="0", AGGIOS_LOG_LEVEL="warn",
                   AGGIOS_AUTH_LOGIN_FAILURES_PER_ADDRESS="100000",
                   AGGIOS_RATE_LIMITS_ENABLED="false")
        server = subprocess.Popen([args.binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            port = None
            for line in server.stdout:
                if "listening on" in line:
                    port = int(line.rsplit(":", 1)[1].split("/")[0])
                    break
            assert port, "the server did not start"
            signup = gql(port, "mutation($i: SignUpInput!) { signUp(input: $i) { accessToken } }", {"i": {
                "agencyName": "Bench", "subdomain": "bench", "email": "owner@bench.com",
                "password": "tundra velvet orbit 42", "firstName": "Olga", "lastName": "Owner"}})
            assert signup.get("data"), signup
            time.sleep(2)
            before = rss_mib(server.pid)
            peak = [before]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mib(server.pid))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            login = "mutation($i: LoginInput!) { login(input: $i) { accessToken } }"
            codes = {}
            started = time.time()
            with cf.ThreadPoolExecutor(args.c) as pool:
                # Distinct accounts, so the per-pair throttle does not cut the burst short.
                jobs = [pool.submit(gql, port, login, {"i": {"email": f"who{i}@bench.com", "password": "wrong wrong wrong"}}, "bench.localhost")
                        for i in range(args.n)]
                for j in jobs:
                    errs = j.result().get("errors") or [{}]
                    code = errs[0].get("extensions", {}).get("code", "none")
                    codes[code] = codes.get(code, 0) + 1
            took = time.time() - started
            done.set()
            sampler.join()
            time.sleep(args.settle)
            after = rss_mib(server.pid)
            print(f"{args.n} wrong sign-ins, {args.c} at a time, in {took:.1f} s: {codes}")
            print(f"RSS before {before:.0f} MiB, peak {peak[0]:.0f} MiB, {args.settle} s after {after:.0f} MiB")
        finally:
            server.terminate()
            server.wait(timeout=40)


if __name__ == "__main__":
    main()
