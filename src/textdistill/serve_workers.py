"""Several worker processes on one port: ``textdistill serve --workers N``.

uvicorn's supervisor binds the socket once, starts N workers that accept on it (the kernel
spreads connections among them), restarts a worker that dies, and stops them all on SIGINT
or SIGTERM (each finishes its requests in flight). One thing is changed: uvicorn answers
SIGHUP by replacing every worker with a new process; here the supervisor passes SIGHUP on
to each worker instead, which reloads its artifact in place (``serve.ModelSlot``): no
process is restarted, no model loaded twice in one worker, and a broken new artifact leaves
every worker serving the old one.
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from textdistill.serve import AppFactory, ServeConfigError

HEALTHCHECK_TIMEOUT_S = 120


class _ForwardingSupervisor(Multiprocess):
    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None and process.process.is_alive():
                with suppress(ProcessLookupError):  # ended in between: it is replaced anyway
                    os.kill(process.pid, signal.SIGHUP)


def run_workers(factory: AppFactory, *, host: str, port: int, log_level: str, workers: int) -> None:
    """Serve the app that ``factory`` builds with ``workers`` processes until interrupted."""
    config = uvicorn.Config(
        factory.in_worker,
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        # A worker answers the supervisor's pings only once it has imported textdistill and
        # FastAPI, which on a busy machine takes longer than uvicorn's 5 s: it would be
        # killed and restarted over and over, and never serve (seen at a load average of 15).
        timeout_worker_healthcheck=HEALTHCHECK_TIMEOUT_S,
    )
    socket = config.bind_socket()
    supervisor = _ForwardingSupervisor(config, sockets=[socket])
    try:
        supervisor.run()
    finally:
        socket.close()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise ServeConfigError("a worker could not start (its log line says why); stopped")
