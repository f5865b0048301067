"""Throwaway servers and processes for the fault tests: never the shared ones on 5432/6379.

Every process is started in its own session and registered; ``stop_all`` kills what is left,
so a failing test leaves nothing running.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def wait_until(predicate, *, timeout: float, what: str, interval: float = 0.2):
    """Poll `predicate` until truthy; raise with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the test process dies, even without a teardown."""
    try:
        import ctypes

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

    def children(self) -> list[int]:
        """Direct children's pids (a prefork worker's pool processes)."""
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
    """Every process a test started, stopped in reverse order at teardown."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: list[Process] = []

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


class RedisServer:
    """A private `redis-server` on a free port, without persistence; start/stop at will."""

    def __init__(self, group: ProcessGroup) -> None:
        self.port = free_port()
        self.group = group
        self.process: Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
        command += ["--save", "", "--appendonly", "no"]
        self.process = self.group.start(f"redis-{self.port}", command, env=dict(os.environ))
        wait_until(lambda: port_open(self.port), timeout=15, what="redis-server")

    def stop(self) -> None:
        """Kill it (SIGKILL): queued messages are lost, as in a crash without persistence."""
        if self.process is not None:
            self.process.kill()
            self.process = None
        wait_until(lambda: not port_open(self.port), timeout=10, what="redis to stop")


def postgres_bin() -> Path | None:
    """The newest /usr/lib/postgresql/*/bin that has initdb, or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    return Path(candidates[-1]).parent if candidates else None


def _version(path: str) -> float:
    try:
        return float(Path(path).parts[-3])
    except ValueError:
        return 0.0


class PgCluster:
    """A throwaway PostgreSQL cluster (initdb in a temp folder, run as `postgres`)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="handoff-pg-"))
        shutil.chown(self.folder, "postgres", "postgres")
        self.data = self.folder / "data"
        self._as_postgres(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8",
        )  # fmt: skip

    def _as_postgres(self, tool: str, *args: str, check: bool = True):
        command = ["runuser", "-u", "postgres", "--", str(self.bindir / tool), *args]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += " -c max_connections=200"
        log = str(self.folder / "server.log")
        self._as_postgres("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def running(self) -> bool:
        status = self._as_postgres("pg_ctl", "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)
