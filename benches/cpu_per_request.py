#!/usr/bin/env python3
"""Server CPU per request: sends a fixed number of identical GraphQL requests
over keep-alive connections and reads the server's utime + stime from
/proc/PID/stat before and after. Every answer must be 200 with data and no
errors, or the run fails.

    cpu_per_request.py PID URL REQUESTS CONNECTIONS [--warmup N]
        [--header 'Name: value' ...] BODY

BODY is the JSON request, POSTed. Prints one JSON object: requests, cpu_us_per_request,
wall_s, requests_per_s.
"""
import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse

TICK_US = 1_000_000 / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        # The command name may hold spaces; the fields after it are fixed.
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def worker(url, method, path, body, headers, count, failures):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    for _ in range(count):
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            failures.append(f"{resp.status} {data[:300]!r}")
            continue
        answer = json.loads(data)
        if answer.get("errors") or not answer.get("data"):
            failures.append(data[:300].decode(errors="replace"))
    conn.close()


def run(args, count, headers, method, path, body):
    per = [count // args.connections + (1 if i < count % args.connections else 0) for i in range(args.connections)]
    failures = []
    threads = [threading.Thread(target=worker, args=(args.url, method, path, body, headers, n, failures)) for n in per]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return failures


def main():
    p = argparse.ArgumentParser()
    p.add_argument("pid", type=int)
    p.add_argument("url")
    p.add_argument("requests", type=int)
    p.add_argument("connections", type=int)
    p.add_argument("body")
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--header", action="append", default=[])
    args = p.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    method, path, body = "POST", "/graphql", args.body.encode()
    headers.setdefault("content-type", "application/json")
    failures = run(args, args.warmup, headers, method, path, body)
    if failures:
        sys.exit(f"warm-up failed: {failures[0]}")
    before, started = cpu_ticks(args.pid), time.monotonic()
    failures = run(args, args.requests, headers, method, path, body)
    wall, ticks = time.monotonic() - started, cpu_ticks(args.pid) - before
    if failures:
        sys.exit(f"{len(failures)} of {args.requests} requests failed: {failures[0]}")
    print(json.dumps({
        "requests": args.requests,
        "cpu_us_per_request": round(ticks * TICK_US / args.requests, 1),
        "wall_s": round(wall, 2),
        "requests_per_s": round(args.requests / wall),
    }))


if __name__ == "__main__":
    main()
