"""Soak test of ``textdistill serve``: 100,000+ requests from wrk, errors and memory growth.

Starts ``textdistill serve ARTIFACT --workers N --api-key-file KEYS`` on a free loopback port
(access log off; every request carries the key, so authentication is part of the cost), warms
it up, records each worker's resident memory (``VmRSS`` in ``/proc/<pid>/status``; with one
worker, the server process itself), then drives it
with wrk (a C HTTP load generator; ``apt-get install wrk``) at bounded concurrency
(``--connections`` keep-alive connections on ``--threads`` threads) until exactly
``--requests`` answers have come back, and records memory again. With ``--workers 1 2`` (the
default), one soak per count, each on a fresh server. The requests cycle through a fixed
mix of bodies: single SST-2 sentences, single IMDB reviews (long texts), batches of 16
sentences, some asking for logits. A Lua script checks every answer's status, stops each
wrk thread at its share of the requests, and prints wrk's summary as JSON.

Without an artifact, a ``soft_ce`` student is first fit on the SST-2 training sentences
(as ``benchmarks/serve_load.py`` does), or on synthetic text when the data is absent.

    python benchmarks/soak.py [ARTIFACT] [--workers 1 2] [--requests 100000] [--connections 8]

Writes ``benchmarks/results/soak.json``; exits 1 if a request failed or a worker's memory
grew by more than 10%.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import write_results
from server_process import free_port, start_server, stop_server, worker_pids

ROOT = Path(__file__).resolve().parent.parent
MAX_GROWTH = 0.10

# wrk's Lua side: one body per line of BODIES; each thread stops after LIMIT answers and
# leaves a marker file, so the run ends on a request count, not on a duration.
LUA = r"""
local bodies = {}
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("SOAK_BODIES")) do
    table.insert(bodies, line)
  end
  limit = tonumber(os.getenv("SOAK_LIMIT"))
  marker = os.getenv("SOAK_MARKERS") .. "/done-" .. id
  answered, bad, next_body = 0, 0, (id - 1) * 997
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("SOAK_KEY")
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/predict", nil, bodies[next_body])
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    bad = bad + 1
  end
  if answered == limit then
    local handle = io.open(marker, "w")
    handle:write(answered, " ", bad, "\n")
    handle:close()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad_total = 0
  for _, thread in ipairs(threads) do
    bad_total = bad_total + (thread:get("bad") or 0)
  end
  local result = {
    requests = summary.requests,
    duration_us = summary.duration,
    non_200 = bad_total,
    errors_connect = summary.errors.connect,
    errors_read = summary.errors.read,
    errors_write = summary.errors.write,
    errors_status = summary.errors.status,
    errors_timeout = summary.errors.timeout,
    latency_us_p50 = latency:percentile(50),
    latency_us_p90 = latency:percentile(90),
    latency_us_p99 = latency:percentile(99),
    latency_us_p999 = latency:percentile(99.9),
    latency_us_max = latency.max,
    latency_us_mean = latency.mean,
  }
  local parts = {}
  for key, value in pairs(result) do
    table.insert(parts, string.format('"%s": %s', key, tostring(value)))
  end
  io.write("SOAK_RESULT {" .. table.concat(parts, ", ") .. "}\n")
end
"""


def _read_texts(path: Path, limit: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        return [row["text"] for row in itertools.islice(csv.DictReader(handle), limit)]


def _texts(data: Path) -> tuple[list[str], list[str], str]:
    """Short and long texts to send; real ones when the shared data is there."""
    if (data / "sst2_dev.csv.gz").exists() and (data / "imdb_train.csv.gz").exists():
        return (
            _read_texts(data / "sst2_dev.csv.gz", 10**9),
            _read_texts(data / "imdb_train.csv.gz", 300),
            "SST-2 dev sentences and IMDB training reviews",
        )
    rng = random.Random(0)
    words = [
        "a",
        "the",
        "film",
        "movie",
        "great",
        "awful",
        "dull",
        "moving",
        "plot",
        "cast",
        "script",
        "superb",
        "tedious",
    ]
    short = [" ".join(rng.choices(words, k=rng.randrange(3, 20))) for _ in range(800)]
    long = [" ".join(rng.choices(words, k=rng.randrange(150, 600))) for _ in range(300)]
    return short, long, "synthetic text (the shared data is absent)"


def _train_artifact(data: Path, out: Path) -> tuple[Path, str]:
    from textdistill.students.linear import LinearStudent

    path = data / "sst2_train.csv.gz"
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
        texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
        what = f"soft_ce student fit on {len(texts)} SST-2 training sentences"
    else:
        short, _, _ = _texts(data)
        texts = short
        labels = ["pos" if "great" in t or "superb" in t else "neg" for t in texts]
        what = f"soft_ce student fit on {len(texts)} synthetic texts"
    LinearStudent(loss="soft_ce").fit(texts, labels).save(out)
    return out, what


def _bodies(short: list[str], long: list[str], n: int = 1000) -> list[str]:
    """A fixed mix: 70% one sentence, 10% one long review, 10% 16 sentences, 10% logits."""
    rng = random.Random(1)
    bodies = []
    for i in range(n):
        kind = i % 10
        if kind < 7:
            body: dict[str, Any] = {"text": rng.choice(short)}
        elif kind == 7:
            body = {"text": rng.choice(long)}
        elif kind == 8:
            body = {"texts": rng.sample(short, 16)}
        else:
            body = {"text": rng.choice(short), "logits": True}
        bodies.append(json.dumps(body, ensure_ascii=True))
    return bodies


def _rss_kib(pid: int) -> dict[str, int]:
    """Resident memory now and at its peak, KiB, from /proc/<pid>/status."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {}
    for line in status.splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0])
    return values


def _wrk(
    url: str, requests: int, connections: int, threads: int, work: Path, bodies: Path, key: str
) -> dict[str, Any]:
    """Run wrk until ``requests`` answers arrived (a multiple of ``threads``); its summary."""
    markers = work / f"markers-{time.monotonic_ns()}"
    markers.mkdir()
    script = work / "soak.lua"
    script.write_text(LUA)
    env = {
        **os.environ,
        "SOAK_BODIES": str(bodies),
        "SOAK_LIMIT": str(math.ceil(requests / threads)),
        "SOAK_MARKERS": str(markers),
        "SOAK_KEY": key,
    }
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        "-d3600s",  # a ceiling: the Lua script stops each thread at its share
        "--timeout",
        "30s",
        "-s",
        str(script),
        url,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    while len(list(markers.iterdir())) < threads:
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)  # every thread stopped: end wrk's wait, print summary
    output, _ = process.communicate(timeout=120)
    line = next((x for x in output.splitlines() if x.startswith("SOAK_RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary:\n{output}")
    result: dict[str, Any] = json.loads(line.removeprefix("SOAK_RESULT "))
    result["command"] = " ".join(command)
    return result


def _soak(
    artifact: Path, workers: int, args: argparse.Namespace, work: Path, bodies: Path
) -> dict[str, Any]:
    """One soak on a fresh server with ``workers`` processes: its row of the results."""
    key = secrets.token_urlsafe(32)
    keys = work / "keys.txt"
    keys.write_text(key + "\n")
    keys.chmod(0o600)
    port = free_port()
    log = work / f"server-{workers}.log"
    options = ["--workers", str(workers), "--api-key-file", str(keys)]
    server = start_server(artifact, port, log, options)
    url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    try:
        pids = worker_pids(server, log, workers)
        started_rss = {pid: _rss_kib(pid) for pid in pids}
        warm = _wrk(url, args.warmup, args.connections, args.threads, work, bodies, key)
        before = {pid: _rss_kib(pid) for pid in pids}
        total = sum(before[pid]["VmRSS"] for pid in pids)
        print(f"[soak] {workers} workers warm: {warm['requests']} requests; RSS {total} KiB")
        soak = _wrk(url, args.requests, args.connections, args.threads, work, bodies, key)
        after = {pid: _rss_kib(pid) for pid in pids}
        still = worker_pids(server, log, workers)
    finally:
        stop_server(server)
    server_log = log.read_text()
    seconds = soak["duration_us"] / 1e6
    errors = sum(soak[k] for k in soak if k.startswith("errors_")) + soak["non_200"]
    per_worker = [
        {
            "rss_kib_at_start": started_rss[pid]["VmRSS"],
            "rss_kib_before": before[pid]["VmRSS"],
            "rss_kib_after": after[pid]["VmRSS"],
            "rss_growth": round(
                (after[pid]["VmRSS"] - before[pid]["VmRSS"]) / before[pid]["VmRSS"], 4
            ),
            "peak_rss_kib": after[pid]["VmHWM"],
        }
        for pid in pids
    ]
    return {
        "workers": workers,
        "requests": soak["requests"],
        "warmup_requests": warm["requests"],
        "connections": args.connections,
        "threads": args.threads,
        "seconds": round(seconds, 1),
        "requests_per_s": round(soak["requests"] / seconds, 1),
        "latency_ms_p50": round(soak["latency_us_p50"] / 1000, 2),
        "latency_ms_p90": round(soak["latency_us_p90"] / 1000, 2),
        "latency_ms_p99": round(soak["latency_us_p99"] / 1000, 2),
        "latency_ms_p999": round(soak["latency_us_p999"] / 1000, 2),
        "latency_ms_max": round(soak["latency_us_max"] / 1000, 2),
        "errors": errors,
        "non_200": soak["non_200"],
        "socket_errors": {k: soak[k] for k in sorted(soak) if k.startswith("errors_")},
        "worker_memory": per_worker,
        "max_worker_rss_growth": max(w["rss_growth"] for w in per_worker),
        "workers_replaced": sorted(still) != sorted(pids),
        "traceback_in_server_log": "Traceback" in server_log,
        "load_average_1_5_15_before": [round(x, 2) for x in load_before],
        "wrk_command": soak["command"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("artifact", nargs="?", type=Path, help="student artifact to serve")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker counts (1 2)"
    )
    parser.add_argument("--requests", type=int, default=100_000, help="soak requests (100000)")
    parser.add_argument("--warmup", type=int, default=5_000, help="warm-up requests (5000)")
    parser.add_argument("--connections", type=int, default=8, help="open connections (8)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("soak.py needs wrk: apt-get install wrk (or brew install wrk)")

    short, long, source = _texts(args.data)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        if args.artifact is not None:
            artifact, what = args.artifact, str(args.artifact)
        else:
            artifact, what = _train_artifact(args.data, work / "student")
        bodies = work / "bodies.jsonl"
        bodies.write_text("\n".join(_bodies(short, long)) + "\n")
        rows = [_soak(artifact, workers, args, work, bodies) for workers in args.workers]

    wrk_version = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    written = write_results(
        "soak",
        rows,
        client={"wrk": (wrk_version.stdout or wrk_version.stderr).splitlines()[0]},
        artifact=what,
        texts=source,
        request_mix="70% one sentence, 10% one IMDB review, 10% a batch of 16 sentences, "
        "10% one sentence with logits; 1,000 fixed bodies cycled",
        notes="client (wrk) and server share the machine; server access log off; every "
        "request carries an API key (Authorization: Bearer); latency from wrk; memory per "
        "worker process (the server itself with 1 worker), before = after a warm-up of "
        f"{args.warmup} requests; growth limit {MAX_GROWTH:.0%} per worker",
    )
    print(json.dumps(rows, indent=2))
    print(f"[soak] wrote {written}", file=sys.stderr)
    problems = []
    for row in rows:
        name = f"{row['workers']} workers"
        if row["requests"] < args.requests:
            problems.append(f"{name}: only {row['requests']} requests completed")
        if row["errors"]:
            problems.append(f"{name}: {row['errors']} failed requests")
        if row["max_worker_rss_growth"] > MAX_GROWTH:
            problems.append(f"{name}: a worker's memory grew by {row['max_worker_rss_growth']:.1%}")
        if row["traceback_in_server_log"]:
            problems.append(f"{name}: the server logged a traceback")
        if row["workers_replaced"]:
            problems.append(f"{name}: a worker died and was replaced")
    if problems:
        raise SystemExit("[soak] " + "; ".join(problems))


if __name__ == "__main__":
    main()
