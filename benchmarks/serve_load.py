"""Load test of ``textdistill serve``: requests/s, docs/s and latency over real HTTP.

Starts ``textdistill serve ARTIFACT`` on a free loopback port in a subprocess (access log
off: ``--log-level warning``), then drives it with httpx from a bounded pool of worker
threads (one keep-alive connection each): ``--requests`` single-text requests and as many
batch-of-32 requests, on SST-2 dev sentences and on the first IMDB training reviews.
Latency is measured by the client, from sending a request to having parsed its answer.
Without an artifact, a linear student is fit on the SST-2 training sentences' gold labels.

    python benchmarks/serve_load.py [ARTIFACT] [--requests 2000] [--concurrency 1 4]

Writes ``benchmarks/results/serve_load.json``; exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from results_file import write_results
from server_process import free_port, start_server, stop_server

ROOT = Path(__file__).resolve().parent.parent
BATCH = 32


def _read_texts(path: Path, limit: int) -> tuple[list[str], list[str]]:
    texts: list[str] = []
    labels: list[str] = []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        for row in itertools.islice(csv.DictReader(handle), limit):
            texts.append(row["text"])
            labels.append(row.get("label", ""))
    return texts, labels


def _train_artifact(data: Path, out: Path) -> Path:
    from textdistill.students.linear import LinearStudent

    texts, labels = _read_texts(data / "sst2_train.csv.gz", 10**9)
    started = time.perf_counter()
    LinearStudent(loss="soft_ce").fit(texts, labels).save(out)
    print(
        f"[serve_load] trained a student on {len(texts)} SST-2 sentences "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    return out


def _drive(url: str, bodies: list[bytes], n_docs: int, concurrency: int) -> dict[str, Any]:
    """Send every body once from ``concurrency`` threads; latencies and failures."""
    latencies = np.zeros(len(bodies))
    errors: list[str] = []
    next_index = itertools.count()
    lock = threading.Lock()

    def worker() -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(timeout=60) as client:
            while True:
                with lock:
                    i = next(next_index)
                if i >= len(bodies):
                    return
                started = time.perf_counter()
                try:
                    response = client.post(url, content=bodies[i], headers=headers)
                    answered = response.status_code == 200 and response.json()["predictions"]
                    if not answered or len(answered) != n_docs:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                except (httpx.HTTPError, ValueError, KeyError) as error:
                    errors.append(repr(error))
                latencies[i] = time.perf_counter() - started

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {"wall_s": wall, "latencies_s": latencies, "errors": errors}


def _bodies(texts: list[str], n_requests: int, batch: int) -> list[bytes]:
    cycle = itertools.cycle(texts)
    if batch == 1:
        return [json.dumps({"text": next(cycle)}).encode() for _ in range(n_requests)]
    return [
        json.dumps({"texts": list(itertools.islice(cycle, batch))}).encode()
        for _ in range(n_requests)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("artifact", nargs="?", type=Path, help="student artifact to serve")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--requests", type=int, default=2000, help="per dataset, mode, concurrency")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 4], help="client threads (default 1 4)"
    )
    parser.add_argument("--imdb-rows", type=int, default=1000, help="IMDB reviews to cycle")
    args = parser.parse_args()

    datasets = {
        "sst2": _read_texts(args.data / "sst2_dev.csv.gz", 10**9)[0],
        "imdb": _read_texts(args.data / "imdb_train.csv.gz", args.imdb_rows)[0],
    }
    load_before = os.getloadavg()
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="serve_load-") as tmp:
        artifact = args.artifact or _train_artifact(args.data, Path(tmp) / "student")
        port = free_port()
        server = start_server(artifact, port, Path(tmp) / "server.log")
        url = f"http://127.0.0.1:{port}/predict"
        try:
            for dataset, texts in datasets.items():
                for mode, batch in (("single", 1), (f"batch{BATCH}", BATCH)):
                    for concurrency in args.concurrency:
                        warm_up = _bodies(texts, 4 * concurrency, batch)
                        _drive(url, warm_up, batch, concurrency)
                        bodies = _bodies(texts, args.requests, batch)
                        result = _drive(url, bodies, batch, concurrency)
                        latencies_ms = result["latencies_s"] * 1000
                        row = {
                            "system": "textdistill-serve",
                            "dataset": dataset,
                            "mode": mode,
                            "concurrency": concurrency,
                            "requests": args.requests,
                            "errors": len(result["errors"]),
                            "requests_per_s": round(args.requests / result["wall_s"], 1),
                            "docs_per_s": round(args.requests * batch / result["wall_s"], 1),
                            "latency_ms_p50": round(float(np.percentile(latencies_ms, 50)), 2),
                            "latency_ms_p99": round(float(np.percentile(latencies_ms, 99)), 2),
                        }
                        rows.append(row)
                        failures.extend(result["errors"][:3])
                        print(
                            f"{dataset:5s} {mode:8s} c={concurrency:<3d} "
                            f"{row['requests_per_s']:8.1f} req/s {row['docs_per_s']:9.1f} docs/s "
                            f"p50 {row['latency_ms_p50']:7.2f} ms p99 {row['latency_ms_p99']:7.2f}"
                            f" ms errors {row['errors']}",
                            flush=True,
                        )
        finally:
            stop_server(server)
    written = write_results(
        "serve_load",
        rows,
        python=platform.python_version(),
        load_average_1_5_15_before=[round(x, 2) for x in load_before],
        notes="client and server share the machine; server access log off; latency "
        "measured by the client (send to parsed answer)",
    )
    print(f"[serve_load] wrote {written}", file=sys.stderr)
    if failures:
        print("[serve_load] failed requests, e.g.:\n" + "\n".join(failures), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
