"""``WorkerPool``: a :class:`~envs.dmc_tasks.runner.DMCBatch` split over worker processes.

Copies ``0..N-1`` are split into ``num_workers`` contiguous chunks; worker ``w`` owns one chunk and talks
to the parent over a ``multiprocessing`` pipe (``spawn`` start method, so no GL context or thread pool is
inherited). Each call sends one command to every worker, then gathers the replies in worker order, so
the batch keeps copy order. The parent polls each pipe and checks the process: a worker that dies, or
does not answer within ``timeout_s``, raises ``RuntimeError`` naming the env, the worker, its copies
and seeds -- never a hang. An exception inside a worker is re-raised in the parent with its message
(a missing GL backend stays a :class:`~envs.dmc_tasks.GLBackendError`).
"""

from __future__ import annotations

import multiprocessing as mp
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

from envs.dmc_tasks import GLBackendError


def _serve(conn, name: str, seeds: list[int], kwargs: dict) -> None:
    """Worker loop: build the batch, then answer ``(command, argument)`` until ``close``."""
    from envs.dmc_tasks.runner import DMCBatch

    try:
        batch = DMCBatch(name, seeds, **kwargs)
        conn.send(("ok", batch.info()))
    except BaseException as err:  # reported to the parent, which raises it
        conn.send(("error", (type(err).__name__, str(err), traceback.format_exc())))
        return
    while True:
        try:
            command, argument = conn.recv()
        except (EOFError, ConnectionError):  # the parent went away without saying close
            batch.close()
            return
        if command == "close":
            batch.close()
            conn.send(("ok", None))
            return
        try:
            conn.send(("ok", getattr(batch, command)(argument)))
        except Exception as err:
            conn.send(("error", (type(err).__name__, str(err), traceback.format_exc())))


def unguarded_main_script() -> str | None:
    """The path of the running ``__main__`` script when its source has no ``if __name__ == "__main__":``
    guard (``spawn`` re-imports it in every worker, which would start workers again), else ``None``."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or mp.parent_process() is not None:
        return None
    try:
        source = Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    return None if re.search(r"__name__\s*==\s*['\"]__main__['\"]", source) else str(path)


class WorkerPool:
    """Same interface as ``DMCBatch`` (``info``, ``reset(mask)``, ``step(actions)``, ``seed``, ``close``)."""

    def __init__(self, name: str, seeds: list[int], num_workers: int, timeout_s: float = 300.0, **kwargs):
        script = unguarded_main_script()
        if script is not None:
            raise RuntimeError(
                f"dmc/{name}: {script} builds a multi-process DMC env at import time; worker processes "
                "(spawn) re-import it. Put the code that calls envs.make under `if __name__ == "
                '"__main__":`, or pass num_workers=0 to step every copy in this process.'
            )
        self.name = name
        self.timeout_s = timeout_s
        self.chunks = np.array_split(np.arange(len(seeds)), num_workers)
        self.seeds = [[int(seeds[i]) for i in chunk] for chunk in self.chunks]
        ctx = mp.get_context("spawn")
        self.conns, self.processes = [], []
        for w in range(num_workers):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(child, name, self.seeds[w], kwargs), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.processes.append(proc)
        try:
            self._info = self._gather()[0]
        except BaseException:
            self.close()
            raise

    def info(self) -> dict:
        return self._info

    def _describe(self, w: int) -> str:
        chunk = self.chunks[w]
        return f"dmc/{self.name}: worker {w} (copies {chunk[0]}..{chunk[-1]}, seeds {self.seeds[w]})"

    def _receive(self, w: int):
        conn, proc = self.conns[w], self.processes[w]
        deadline = time.monotonic() + self.timeout_s
        while not conn.poll(0.2):
            if not proc.is_alive():
                raise RuntimeError(f"{self._describe(w)} died with exit code {proc.exitcode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self._describe(w)} did not answer within {self.timeout_s:.0f} s")
        try:
            status, payload = conn.recv()
        except (EOFError, ConnectionError) as err:
            raise RuntimeError(f"{self._describe(w)} died (pipe closed: {err!r})") from None
        if status == "error":
            kind, message, trace = payload
            if kind == GLBackendError.__name__:
                raise GLBackendError(message)
            raise RuntimeError(f"{self._describe(w)} failed: {kind}: {message}\n{trace}")
        return payload

    def _gather(self) -> list:
        return [self._receive(w) for w in range(len(self.conns))]

    def _send(self, w: int, message) -> None:
        try:
            self.conns[w].send(message)
        except (BrokenPipeError, ConnectionError, OSError):
            code = self.processes[w].exitcode
            raise RuntimeError(f"{self._describe(w)} died with exit code {code}") from None

    @staticmethod
    def _concat(parts: list[dict]) -> dict:
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    def reset(self, mask: np.ndarray) -> dict:
        active = [w for w, chunk in enumerate(self.chunks) if mask[chunk].any()]
        for w in active:
            self._send(w, ("reset", mask[self.chunks[w]]))
        return self._concat([self._receive(w) for w in active])

    def seed(self, seeds: np.ndarray) -> None:
        for w, chunk in enumerate(self.chunks):
            self._send(w, ("seed", seeds[chunk]))
        self._gather()

    def step(self, actions: np.ndarray) -> dict:
        for w, chunk in enumerate(self.chunks):
            self._send(w, ("step", actions[chunk]))
        return self._concat(self._gather())

    def close(self) -> None:
        for w, proc in enumerate(self.processes):
            if proc.is_alive():
                try:
                    self.conns[w].send(("close", None))
                except (BrokenPipeError, ConnectionError, OSError):
                    pass
        for proc in self.processes:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self.conns:
            conn.close()
        self.processes, self.conns = [], []
