"""Start and stop a real ``textdistill serve`` process on a free loopback port, for the load
benchmarks (serve_load.py, soak.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    artifact: Path, port: int, log_path: Path, options: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start the server (access log off, more ``options`` of ``textdistill serve`` given)
    and wait until /health answers (120 s at most)."""
    script = Path(sys.executable).with_name("textdistill")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "textdistill.cli"]
    process = subprocess.Popen(
        [
            *command,
            "serve",
            str(artifact),
            "--port",
            str(port),
            "--log-level",
            "warning",
            *options,
        ],
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as answer:
                if answer.status == 200:
                    return process
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not answer /health within 120 s")
        time.sleep(0.1)


def stop_server(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGINT (a clean uvicorn shutdown), then SIGKILL if it hangs."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def worker_pids(
    process: subprocess.Popen[bytes], log_path: Path, expected: int, timeout: float = 300
) -> list[int]:
    """The processes that answer requests: the server itself, or with ``--workers`` N its N
    worker processes (children started by multiprocessing's spawn), once each has logged
    that it serves."""
    if expected == 1:
        return [process.pid]
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                command = (stat.parent / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == process.pid and b"spawn_main" in command:
                found.append(int(stat.parent.name))
        ready = sum("] worker " in line and ": serving " in line for line in _lines(log_path))
        if len(found) == expected and ready >= expected:
            return sorted(found)
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(found)} workers of {expected} came up")
        time.sleep(0.2)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()
    except OSError:
        return []
