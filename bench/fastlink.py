#!/usr/bin/python3
"""Fast links: where the link is not the limit, the engine and the read path are. Runs
bench/run.py once per scenario (each needs its own nginx) and merges the results into one
JSON with the ratios the issue asks for:

    loopback   no link cap, no delay: the CDN's per-connection rate is the only limit
    latency30  no link cap, 30 ms before every CDN reply (the per-request round trip)

    sudo bench/fastlink.py --results /tmp/fast.json [--hffs BIN] [--hffs-b BIN] [--repeats 3]

Other options go through to run.py (e.g. --bench transfer,load --conn-rate 40e6).
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIOS = {"loopback": ["--link-mbit", "0", "--ttfb-ms", "0"],
             "latency30": ["--link-mbit", "0", "--ttfb-ms", "30"]}


def median(runs, key):
    vals = [r[key] for r in runs if "error" not in r and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def ratios(res):
    """Per hffs tool: MB/s and CPU s/GB against aria2c's in the same run (medians)."""
    runs = res.get("transfer", {}).get("runs", {})
    aria = runs.get("aria2c", [])
    a_mbps, a_cpu = median(aria, "mbps"), median(aria, "cpu_per_gb")
    out = {}
    for tool, rs in runs.items():
        mbps, cpu = median(rs, "mbps"), median(rs, "cpu_per_gb")
        out[tool] = {"mbps": mbps, "cpu_per_gb": cpu,
                     "vs_aria2c": mbps / a_mbps if mbps and a_mbps else None,
                     "cpu_vs_aria2c": cpu / a_cpu if cpu and a_cpu else None}
    return out


def without_traces(res):
    """res without the per-reply and per-50-ms traces of load runs (bench/plot.py's input,
    kept in the per-scenario files): the merged file stays small."""
    for runs in res.get("load", {}).get("runs", {}).values():
        for r in runs:
            r.pop("cdn_timeline", None)
            r.pop("written", None)
            r.get("result", {}).pop("progress", None)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True, help="the merged JSON")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--bench", default="transfer")
    args, rest = ap.parse_known_args()
    merged = {}
    for name in args.scenarios.split(","):
        out = Path(args.results).with_suffix(f".{name}.json")
        cmd = [sys.executable, str(HERE / "run.py"), "--bench", args.bench, *SCENARIOS[name],
               "--no-docs", "--results", str(out), *rest]
        print(f"fastlink: {name}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, check=True)
        res = without_traces(json.loads(out.read_text()))
        merged[name] = {"ratios": ratios(res), "results": res}
        for tool, r in merged[name]["ratios"].items():
            print(f"fastlink: {name}: {tool}: {r}", flush=True)
    Path(args.results).write_text(json.dumps(merged, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
