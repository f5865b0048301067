"""Child processes in their own session with their output in a log file, and the waits around
them. Every process started through a ``ProcessGroup`` is stopped by ``stop_all``, so a failing
run leaves nothing behind."""

from __future__ import annotations

import ctypes
import glob
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.harness import ROOT

T = TypeVar("T")


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:port."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_until(predicate: Callable[[], T], *, timeout: float, what: str, interval=0.2) -> T:
    """Poll `predicate` until truthy; raise with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def http_answers(port: int, path: str = "/accounts/login/") -> bool:
    """Whether an HTTP GET of `path` on 127.0.0.1:port gets any answer."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", path)
        conn.getresponse().read()
        conn.close()
    except OSError:
        return False
    return True


def http_wait(*, port: int, timeout: float = 90) -> None:
    """Wait until the site answers HTTP on 127.0.0.1:port (raises after `timeout` s)."""
    wait_until(lambda: http_answers(port), timeout=timeout, what=f"HTTP on port {port}")


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when its parent dies, even without a teardown."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Process:
    """A child process in its own session with its output in a log file."""

    def __init__(self, name: str, command: list[str], *, env: dict, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, *, timeout: float) -> None:
        """Wait until `text` appears in the log; raise with the log's tail if the process dies."""
        wait_until(lambda: text in self.log() or not self.alive(), timeout=timeout, what=self.name)
        if not self.alive():
            raise RuntimeError(f"{self.name} died:\n{self.log()[-3000:]}")

    def children(self) -> list[int]:
        """Direct children's pids (a prefork worker's pool processes, gunicorn's workers)."""
        found = []
        for path in glob.glob(f"/proc/{self.pid}/task/*/children"):
            found += [int(pid) for pid in Path(path).read_text().split()]
        return found

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the whole process group (master and its workers)."""
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.popen.wait(timeout=30)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM, then SIGKILL the group (workers outliving their master too); idempotent."""
        if self.alive() and timeout > 0:
            self.kill(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill(signal.SIGKILL)
        self._log.close()


class ProcessGroup:
    """Every process a run started, stopped together at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, command: list[str], *, env: dict) -> Process:
        process = Process(name, command, env=env, log_dir=self.log_dir)
        self.processes.append(process)
        return process

    def stop_all(self, timeout: float = 10) -> None:
        """SIGTERM to every process at once, then SIGKILL whatever outlives `timeout`."""
        for process in self.processes:
            if process.alive():
                process.kill(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes:
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for process in reversed(self.processes):
            process.stop(timeout=0)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in self.processes)
