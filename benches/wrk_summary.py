"""A wrk run as one line: "req/s p50_ms p99_ms errors".

Usage: wrk_summary.py WRK_OUTPUT [WRK_STDERR]. Errors are non-2xx answers,
socket errors, and the bad answers the Lua scripts report on stderr.
"""
import re
import sys

text = open(sys.argv[1]).read()
err = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""


def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
non_2xx = sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", text))
socket = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", "".join(re.findall(r"Socket errors: .*", text))))
bad = sum(1 for line in err.splitlines() if "failed:" in line or "bad answer" in line)
print(f"{rps:.1f} {ms('50%'):.2f} {ms('99%'):.2f} {non_2xx + socket + bad}")
