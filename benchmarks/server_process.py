"""Start and stop a real ``textdistill serve`` process on a free loopback port, for the load
benchmarks (serve_load.py, soak.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(artifact: Path, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """Start the server (access log off) and wait until /health answers (120 s at most)."""
    script = Path(sys.executable).with_name("textdistill")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "textdistill.cli"]
    process = subprocess.Popen(
        [*command, "serve", str(artifact), "--port", str(port), "--log-level", "warning"],
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
