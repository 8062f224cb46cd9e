"""Keeps child processes running: starts them, waits until each is ready, and
restarts one that dies, with exponential backoff. A child that keeps dying
(a crash loop) stops the supervision with a message naming it and showing its
log tail, instead of restarting forever."""

import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path


class StackError(RuntimeError):
    """The platform could not start or keep running; the message says which part and why."""


class CrashLoop(StackError):
    """A child died again and again; restarting it once more would not help."""


def _report_to_stderr(line: str) -> None:
    print(f"clarion: {line}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ChildSpec:
    """How to spawn a child again, exactly as the first time."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    # Is the child serving? Given the child, so a check can read its own log.
    ready: Callable[["Child"], bool]
    ready_timeout: float = 30
    # How long a SIGTERM may take before SIGKILL; the worker drains for longer.
    stop_timeout: float = 10
    # Scheduling niceness (0 to 19): higher yields the CPU to the others.
    niceness: int = 0


class State(StrEnum):
    STARTING = "starting"  # spawned, readiness check not yet passed
    UP = "up"
    BACKING_OFF = "backing off"  # dead, waiting to be spawned again


@dataclass
class Child:
    """One supervised child; `process` is replaced when it is restarted."""

    spec: ChildSpec
    process: subprocess.Popen[bytes]
    state: State = State.STARTING
    # Where this run's output starts in the log, which every run appends to.
    log_offset: int = 0
    started_at: float = field(default_factory=time.monotonic)
    up_since: float | None = None
    restarts: int = 0
    restart_delay: float = 0.0
    restart_at: float = 0.0
    ready_deadline: float = 0.0
    deaths: deque[float] = field(default_factory=deque)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def log_path(self) -> Path:
        return self.spec.log_path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def output_since_start(self) -> str:
        """This run's output only: earlier runs' lines must not pass a readiness check."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self.log_offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""


def exit_description(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with code {returncode}"


def _spawn_process(spec: ChildSpec) -> tuple[subprocess.Popen[bytes], int]:
    command = spec.command
    if spec.niceness:
        # Through nice(1), so that every thread the child starts inherits it.
        command = ["nice", "-n", str(spec.niceness), *command]
    with spec.log_path.open("ab") as log:
        offset = log.tell()
        process = subprocess.Popen(
            command,
            cwd=spec.cwd,
            env=spec.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Own process group: Ctrl-C reaches the supervisor, which stops children in order.
            start_new_session=True,
        )
    if spec.niceness:
        _set_autogroup_niceness(process.pid, spec.niceness)
    return process, offset


def _set_autogroup_niceness(pid: int, niceness: int) -> None:
    """With the kernel's autogroup scheduling on (sched_autogroup_enabled, the
    default on desktop and many server kernels), every session is a group of
    its own that shares the CPU equally with other groups, and a process's
    niceness only ranks it inside its group. Each child is a session of its
    own, so its niceness alone changes nothing: measured with four busy
    processes on two cores, nice 19 ones got the same CPU as nice 0 ones
    (1.48 s against 1.49 s in 3 s), and 0.05 s once their group's niceness
    was set too (sched(7), "The autogroup feature")."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
    except OSError:
        pass  # no autogroup scheduling (or not Linux): niceness alone works there


@dataclass
class Supervisor:
    # A dead child is spawned again after backoff_initial seconds, doubling
    # up to backoff_max; once it has stayed up stable_after seconds, the
    # delay starts again from backoff_initial.
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0
    # More than max_restarts deaths of one child within restart_window
    # seconds is a crash loop.
    max_restarts: int = 5
    restart_window: float = 120.0
    report: Callable[[str], None] = _report_to_stderr
    children: list[Child] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stopped: bool = False

    def start(self, spec: ChildSpec) -> Child:
        process, offset = _spawn_process(spec)
        child = Child(spec, process, log_offset=offset)
        child.ready_deadline = child.started_at + spec.ready_timeout
        self.children.append(child)
        return child

    def wait_ready(self, child: Child) -> None:
        """For the first start, which goes one child at a time, in order."""
        while child.process.poll() is None:
            if child.spec.ready(child):
                child.state, child.up_since = State.UP, time.monotonic()
                return
            if time.monotonic() > child.ready_deadline:
                raise StackError(
                    f"{child.name} not ready after {child.spec.ready_timeout:g} s:\n"
                    f"{child.log_tail()}"
                )
            time.sleep(0.1)
        raise StackError(
            f"{child.name} {exit_description(child.process.returncode)}:\n{child.log_tail()}"
        )

    def child(self, name: str) -> Child:
        return next(c for c in self.children if c.name == name)

    def wait_up(self, name: str, timeout: float = 60) -> Child:
        """Waits until the named child has passed its readiness check (again)."""
        child = self.child(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if child.state is State.UP and child.process.poll() is None:
                return child
            time.sleep(0.1)
        raise StackError(f"{name} not up within {timeout:g} s (state: {child.state})")

    def run(self, should_stop: Callable[[], bool], interval: float = 0.2) -> None:
        """Supervises until should_stop() is true; raises CrashLoop."""
        while not should_stop():
            self.check()
            time.sleep(interval)

    def check(self) -> None:
        """One pass over the children: notice deaths, respawn, check readiness."""
        with self._lock:
            if self._stopped:
                return
            now = time.monotonic()
            for child in self.children:
                if child.state is State.BACKING_OFF:
                    if now >= child.restart_at:
                        self._respawn(child)
                elif child.process.poll() is not None:
                    self._died(child, exit_description(child.process.returncode), now)
                elif child.state is State.STARTING:
                    self._check_ready(child, now)

    def _died(self, child: Child, how: str, now: float) -> None:
        child.deaths.append(now)
        while child.deaths and child.deaths[0] < now - self.restart_window:
            child.deaths.popleft()
        if len(child.deaths) > self.max_restarts:
            self._stopped = True
            raise CrashLoop(
                f"{child.name} {how}, its {len(child.deaths)}th death within "
                f"{self.restart_window:g} s; stopping the platform. "
                f"Last lines of {child.log_path}:\n{child.log_tail()}"
            )
        stayed_up = child.up_since is not None and now - child.up_since >= self.stable_after
        if stayed_up or not child.restart_delay:
            child.restart_delay = self.backoff_initial
        else:
            child.restart_delay = min(child.restart_delay * 2, self.backoff_max)
        child.restarts += 1
        child.state, child.up_since = State.BACKING_OFF, None
        child.restart_at = now + child.restart_delay
        self.report(
            f"{child.name} (pid {child.process.pid}) {how}; "
            f"restart {child.restarts} in {child.restart_delay:g} s"
        )

    def _respawn(self, child: Child) -> None:
        child.process, child.log_offset = _spawn_process(child.spec)
        child.state, child.started_at = State.STARTING, time.monotonic()
        child.ready_deadline = child.started_at + child.spec.ready_timeout

    def _check_ready(self, child: Child, now: float) -> None:
        if child.spec.ready(child):
            child.state, child.up_since = State.UP, now
            again = " again" if child.restarts else ""
            self.report(f"{child.name} is up{again} (pid {child.process.pid})")
        elif now > child.ready_deadline:
            child.process.kill()
            child.process.wait()
            self._died(
                child, f"was not ready after {child.spec.ready_timeout:g} s and was killed", now
            )

    def stop(self) -> None:
        """Stops the children, newest first, each before the next, by PID; none
        is restarted after this. One at a time, so that the draining worker
        still has the sandbox and Temporal that its in-flight calls need."""
        with self._lock:
            self._stopped = True
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(timeout=child.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()
