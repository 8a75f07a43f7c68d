"""``python -m deepfake_serving.supervise -- tritonserver FLAGS``: Triton with a graceful stop.

Triton 2.51 cannot finish an in-flight ensemble or BLS request once SIGTERM has
reached it: from then on the composing models refuse the request's next step,
so it fails with UNAVAILABLE or waits for the client's deadline
(``RELIABILITY.md``, "Shutdown"; ``tests/server/test_shutdown.py``). A model
that is *unloaded*, on the other hand, refuses new requests at once and goes
away only after its last in-flight request has been answered, while the models
it composes keep serving. So this supervisor, the container's entrypoint and
what ``make serve`` runs, starts Triton in its own process group and on SIGTERM,
SIGINT or SIGHUP:

1. unloads the entry models (:data:`ENTRY_MODELS`) through the repository API.
   New requests for them get NOT_FOUND "has no available versions", which
   ``deepfake_client`` retries on another endpoint;
2. waits until each model it could unload has left the READY, LOADING and
   UNLOADING states, at most ``--drain-timeout`` seconds (default: the
   command's ``--exit-timeout-secs``), unload calls included;
3. forwards SIGTERM to Triton, which finishes what is left (direct requests to
   the composing models, one step each) within ``--exit-timeout-secs`` and exits.

A second signal during the drain skips the rest of it (step 3 at once); a
signal after step 3 kills the process group, as does Triton outliving its exit
timeout by :data:`KILL_MARGIN_S`. The exit status is Triton's.

A Triton that exits by itself (a crash, say) is restarted: the dead server's
process group (stubs left behind) is killed, its Python-backend shared-memory
regions are removed from ``/dev/shm`` (the prefixes come from the command's
``shm-region-prefix-name`` backend settings; regions of other servers are left
alone), and a new one starts after a backoff that doubles from
:data:`RESTART_BACKOFF_S` to :data:`MAX_RESTART_BACKOFF_S` and is reset once a
server has stayed up for :data:`STABLE_S`. Readiness is false meanwhile (no
server answers). Each restart is logged. Unloading needs
``--model-control-mode=explicit`` and the repository API's key, which this
reads from the command's ``--http-restricted-api`` flag; when no model can be
unloaded the supervisor says why and forwards SIGTERM at once (the bare 2.51
behaviour).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import json
import os
import queue
import signal
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable, Sequence

import deepfake_contract as contract
from deepfake_serving.repository_api import API_TIMEOUT_S, RepositoryApi, flag_values

#: The models clients call, each of which calls others (ensembles and the
#: ``detect_video`` BLS model). Unloading them first lets their in-flight
#: requests finish on the composing models, which stay loaded until SIGTERM.
ENTRY_MODELS: tuple[str, ...] = tuple(model.name for model in contract.ENTRY_MODELS)

#: Repository-index states in which a model may still have requests in flight.
_BUSY_STATES = frozenset({"READY", "LOADING", "UNLOADING"})

#: Seconds beyond the exit timeout after which a Triton that has not exited is
#: killed: drain + exit timeout + this stays inside Kubernetes' grace period.
KILL_MARGIN_S = 15

#: The first wait before restarting a Triton that died; it doubles on every
#: further crash up to MAX_RESTART_BACKOFF_S.
RESTART_BACKOFF_S = 1.0
MAX_RESTART_BACKOFF_S = 30.0
#: A server that stayed up this long resets the backoff: its crash is news.
STABLE_S = 60.0

#: The Python backend's region prefix setting (``--backend-config=B,shm-region-prefix-name=P``).
_SHM_PREFIX_SETTING = "shm-region-prefix-name="

#: What starts the drain: Kubernetes and Docker (TERM), a terminal's Ctrl-C (INT)
#: and a closed terminal or SSH session (HUP).
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _left(deadline: float) -> float:
    """Seconds until ``deadline`` for one API call: at least a little, at most API_TIMEOUT_S."""
    return min(API_TIMEOUT_S, max(deadline - time.monotonic(), 0.5))


def _terminate_with_parent(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that makes the child get SIGTERM when the supervisor dies
    (PR_SET_PDEATHSIG), so a killed supervisor does not leave Triton running in
    its separate process group. libc is looked up here, in the parent: the
    child may only make the system call between fork and exec."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    except (OSError, AttributeError):
        prctl = None

    def in_child() -> None:
        if prctl is not None:
            prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the supervisor died before the call above
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child


def _log(message: str) -> None:
    # Triton's --log-format=ISO8601 timestamps, so the two logs interleave readably.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        print(f"{stamp} supervise: {message}", file=sys.stderr, flush=True)
    except OSError:
        pass  # a hung-up terminal (SIGHUP) must not stop the drain


def _describe_status(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"{returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            pass
    return str(returncode)


def _error_text(error: Exception) -> str:
    if isinstance(error, urllib.error.HTTPError):
        try:
            return f"HTTP {error.code}: {json.loads(error.read()).get('error', '')}"
        except (ValueError, OSError):
            return f"HTTP {error.code}"
    return str(error)


def shm_region_prefixes(command: Sequence[str]) -> list[str]:
    """The Python-backend shared-memory region prefixes ``command`` sets explicitly."""
    prefixes = []
    for value in flag_values(list(command), "--backend-config"):
        _backend, _, setting = value.partition(",")
        if setting.startswith(_SHM_PREFIX_SETTING) and "/" not in setting:
            prefixes.append(setting[len(_SHM_PREFIX_SETTING) :])
    return prefixes


def remove_shm_regions(prefixes: Sequence[str], shm_dir: str = "/dev/shm") -> list[str]:
    """Delete the regions a dead server left under ``shm_dir``; the paths removed.

    Triton's Python backend unlinks its regions only when it shuts down cleanly,
    so every crash would otherwise leave them (hundreds of MB) in memory.
    """
    removed = []
    for prefix in prefixes:
        for path in glob.glob(os.path.join(shm_dir, glob.escape(prefix) + "*")):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def restart_backoff(previous_s: float | None, uptime_s: float) -> float:
    """Seconds to wait before the next restart, given the last wait and how long the server was up."""
    if previous_s is None or uptime_s >= STABLE_S:
        return RESTART_BACKOFF_S
    return min(previous_s * 2, MAX_RESTART_BACKOFF_S)


def busy_models(states: dict[str, str], models: Sequence[str]) -> list[str]:
    """Those of ``models`` that may still have requests in flight."""
    return [model for model in models if states.get(model) in _BUSY_STATES]


def exit_status(returncode: int) -> int:
    """A shell's exit status for a child's ``returncode`` (128 + N when killed by signal N)."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    """Runs one Triton command and stops it as the module docstring describes."""

    def __init__(
        self,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        models: Sequence[str] = ENTRY_MODELS,
        drain_timeout_s: float | None = None,
        poll_s: float = 0.2,
        restart: bool = True,
    ) -> None:
        self.command = list(command)
        self.env = env
        self.models = tuple(models)
        self.exit_timeout_s = float((flag_values(self.command, "--exit-timeout-secs") or ["30"])[-1])
        self.drain_timeout_s = self.exit_timeout_s if drain_timeout_s is None else drain_timeout_s
        self.poll_s = poll_s
        self.restart = restart
        self.shm_prefixes = shm_region_prefixes(self.command)
        self.api = RepositoryApi.from_command(self.command)
        self._signals: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._process: subprocess.Popen | None = None

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals.put(signum)  # SimpleQueue.put is safe in a signal handler

    def _next_signal(self, timeout_s: float) -> int | None:
        try:
            return self._signals.get(timeout=max(timeout_s, 0))
        except queue.Empty:
            return None

    def run(self) -> int:
        """Start Triton, stop it gracefully on the first signal; Triton's exit status."""
        previous = {signum: signal.signal(signum, self._on_signal) for signum in HANDLED_SIGNALS}
        try:
            # Its own process group: a terminal's Ctrl-C reaches only this
            # supervisor, not Triton and its stubs, which would stop at once.
            # No stdin: in a background group a read from the terminal would stop it.
            backoff: float | None = None
            while True:
                started = time.monotonic()
                self._process = self._start()
                status = self._supervise(self._process)
                if status is not None:
                    return status
                # Died by itself: clean up after it, wait, start another.
                self._kill_group(self._process)
                removed = remove_shm_regions(self.shm_prefixes)
                if removed:
                    _log(f"removed {len(removed)} shared-memory region(s) of the dead server")
                if not self.restart:
                    return exit_status(self._process.returncode)
                backoff = restart_backoff(backoff, time.monotonic() - started)
                _log(f"restarting tritonserver in {backoff:.0f} s")
                signum = self._next_signal(backoff)
                if signum is not None:
                    _log(f"{signal.Signals(signum).name} while waiting to restart: not restarting")
                    return exit_status(self._process.returncode)
        finally:
            if self._process is not None:
                self._stop(self._process)
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_terminate_with_parent(os.getpid()),
        )
        _log(f"started {self.command[0]} (pid {process.pid})")
        return process

    def _supervise(self, process: subprocess.Popen) -> int | None:
        """Until a signal stops Triton (its exit status) or Triton exits by itself (None)."""
        while (signum := self._next_signal(0.5)) is None:
            if process.poll() is not None:
                _log(f"tritonserver exited by itself with {_describe_status(process.returncode)}")
                return None
        _log(f"{signal.Signals(signum).name}: draining {', '.join(self.models)} (at most {self.drain_timeout_s:.0f} s)")
        try:
            interrupted = self.drain(process)
        except Exception as error:  # noqa: BLE001 - a broken drain must still end in a clean SIGTERM
            _log(f"drain failed: {error!r}")
            interrupted = False
        if process.poll() is None:
            _log("SIGTERM to tritonserver" + (" (drain cut short by a second signal)" if interrupted else ""))
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.exit_timeout_s + KILL_MARGIN_S
        while process.poll() is None:
            if self._next_signal(min(0.5, deadline - time.monotonic())) is not None or time.monotonic() >= deadline:
                _log("killing tritonserver")
                self._kill_group(process)
                process.wait()
        _log(f"tritonserver exited with {process.returncode}")
        return exit_status(process.returncode)

    def drain(self, process: subprocess.Popen) -> bool:
        """Unload the entry models and wait until none is busy; True when a signal cut it short."""
        deadline = time.monotonic() + self.drain_timeout_s
        unloading = []
        for model in self.models:
            if self._next_signal(0) is not None:
                return True
            try:
                self.api.unload(model, timeout_s=_left(deadline))
                unloading.append(model)
            except Exception as error:  # noqa: BLE001 - reported; only what unloads is waited for
                _log(f"cannot unload {model}: {_error_text(error)}")
        if not unloading:
            return False  # nothing was unloaded (no explicit model control, wrong key): SIGTERM at once
        while process.poll() is None:
            try:
                busy = busy_models(self.api.states(timeout_s=_left(deadline)), unloading)
            except Exception as error:  # noqa: BLE001 - a slow or failed read is tried again until the deadline
                _log(f"cannot read the repository index: {_error_text(error)}")
                busy = unloading
            if not busy:
                _log("drained: no entry model has a request in flight")
                return False
            if time.monotonic() >= deadline:
                _log(f"drain timed out; still busy: {', '.join(busy)}")
                return False
            if self._next_signal(min(self.poll_s, _left(deadline))) is not None:
                return True
        return False

    def _stop(self, process: subprocess.Popen) -> None:
        """Whatever ended the supervisor: Triton gets SIGTERM and its exit timeout
        (cut short by another signal), then its group is killed."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + self.exit_timeout_s + KILL_MARGIN_S
            while process.poll() is None and time.monotonic() < deadline:
                if self._next_signal(min(0.5, deadline - time.monotonic())) is not None:
                    break
        self._kill_group(process)

    @staticmethod
    def _kill_group(process: subprocess.Popen) -> None:
        # Stubs normally exit with Triton; this makes sure nothing is left behind.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def supervise(
    command: Sequence[str],
    env: dict[str, str] | None = None,
    *,
    models: Sequence[str] = ENTRY_MODELS,
    drain_timeout_s: float | None = None,
    restart: bool = True,
) -> int:
    """Run ``command`` (a ``tritonserver`` command line) under the supervisor; its exit status."""
    return Supervisor(command, env, models=models, drain_timeout_s=drain_timeout_s, restart=restart).run()


def main(argv: list[str] | None = None) -> int:
    """Run ``-- tritonserver FLAGS`` under the supervisor (drain on SIGTERM/SIGINT, restart on crash)."""
    parser = argparse.ArgumentParser(
        prog="python -m deepfake_serving.supervise",
        description="Run tritonserver; on SIGTERM/SIGINT drain the entry models before Triton stops.",
    )
    parser.add_argument(
        "--drain-timeout", type=float, help="seconds to wait for in-flight requests (default: --exit-timeout-secs)"
    )
    parser.add_argument(
        "--model", action="append", dest="models", help=f"an entry model to drain (default: {', '.join(ENTRY_MODELS)})"
    )
    parser.add_argument(
        "--no-restart", action="store_true", help="exit when tritonserver dies instead of restarting it"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- tritonserver FLAGS")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command: python -m deepfake_serving.supervise -- tritonserver FLAGS")
    return supervise(
        command, models=args.models or ENTRY_MODELS, drain_timeout_s=args.drain_timeout, restart=not args.no_restart
    )


if __name__ == "__main__":
    sys.exit(main())
