"""The host to itself while timing: the lock that ``QUIDE_TIMING_LOCK`` names.

Several runs share a host (one per GPU under `quide reproduce`). Their GPUs share power, cooling,
PCIe and CPU, and the two reruns of issue 13 differed most (up to 3%) on the smallest graphs timed
while the other GPUs trained; alone on a host, two processes timing the same graphs agreed within
0.7% (benchmarks/results/timer_probe_h200_process*.txt). So where QUIDE_TIMING_LOCK names a file,
every timing takes the host for itself (an exclusive lock, :func:`timing_turn`) and other GPU work
(a training epoch, an accuracy pass) runs under a shared lock (:func:`gpu_work`). A timer first
takes a gate (``<lock>.gate``) that new GPU work must pass, so timing waits at most for the running
epochs to end, never for whole runs (writer preference). The kernel drops a flock when its process
dies, so a killed run never leaves the host locked.

flock does not say who holds a lock, so each holder notes itself (pid, host, command) in
``<lock>.holders/`` while it holds it. A process kept waiting more than ``NOTICE_AFTER_S`` seconds
says so on stderr, naming the lock and those holders, and again every ``NOTICE_EVERY_S`` seconds.

No torch here: planning checks the lock's path (:func:`check_lock_path`) without loading it.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from .config import TIMING_LOCK_ENV

NOTICE_AFTER_S = 5.0    # a wait for the lock longer than this is said on stderr...
NOTICE_EVERY_S = 60.0   # ...and said again this often while it lasts

_turn = {"mode": None, "depth": 0}


class LockPathError(ValueError):
    """QUIDE_TIMING_LOCK names a path where no lock file can be made or opened."""


def _refuse(path: str, why: str) -> LockPathError:
    return LockPathError(f"{TIMING_LOCK_ENV}={path!r}: {why}; expected the path of a lock file in a folder "
                         f"that exists or can be made (or leave {TIMING_LOCK_ENV} unset: no lock)")


def _open_lock_files(path: str):
    """(gate, lock) opened for flock, the lock's folder and files made where missing (empty files, kept:
    every process of the host opens the same ones), or LockPathError naming the variable and path."""
    lock, gate, holders = Path(path), Path(path + ".gate"), Path(path + ".holders")
    # refused before anything is made, so that a bad path leaves no stray file beside it
    for item, kind in ((lock, "the lock"), (gate, "its gate")):
        if item.is_dir():
            raise _refuse(path, f"{kind} {item} is a folder, not a file")
    existing = next(p for p in (lock.parent.absolute(), *lock.parent.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise _refuse(path, f"{existing} is a file, not a folder")
    if holders.exists() and not holders.is_dir():
        raise _refuse(path, f"{holders} (where holders note themselves) is not a folder")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        holders.mkdir(exist_ok=True)
        gate_file = open(gate, "a")
    except OSError as err:
        raise _refuse(path, f"cannot be made ({err})") from None
    try:
        return gate_file, open(lock, "a")
    except OSError as err:
        gate_file.close()
        raise _refuse(path, f"cannot be made ({err})") from None


def check_lock_path(path: str | None = None) -> None:
    """Raise LockPathError (naming QUIDE_TIMING_LOCK and the path) unless the lock at ``path``
    (default: the variable's value; unset or empty: no lock, nothing to check) can be taken. Makes
    the lock's folder and empty files where missing, as the first run to take it would."""
    path = os.environ.get(TIMING_LOCK_ENV) if path is None else path
    if path:
        for f in _open_lock_files(path):
            f.close()


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process of this host (a zombie is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def holders(path: str) -> list[dict]:
    """The holders of the lock at ``path`` that noted themselves and are not known to be gone
    (a note of this host whose pid has ended is skipped)."""
    found, host = [], socket.gethostname()
    for note in sorted(Path(path + ".holders").glob("*.json")):
        try:
            who = json.loads(note.read_text())
        except (OSError, ValueError):
            continue   # being written or removed right now
        if not isinstance(who, dict) or who.get("pid") == os.getpid():
            continue
        if who.get("host") == host and isinstance(who.get("pid"), int) and not pid_alive(who["pid"]):
            continue
        found.append(who)
    return found


def waiting_message(path: str, waited_s: float) -> str:
    """What a process kept waiting for the lock at ``path`` says: the lock, and who holds it."""
    who = holders(path)
    if who:
        held = "; ".join(f"pid {h.get('pid')} on {h.get('host')} ({h.get('mode')} since {h.get('since')}): "
                         f"{str(h.get('command'))[:200]}" for h in who)
    else:
        held = "no holder noted (a timing waiting for GPU work to end, or a process that does not note itself)"
    return (f"quide: waiting {waited_s:.0f} s so far for the timing lock {path} ({TIMING_LOCK_ENV}); "
            f"held by {held}")


def _flock(f, operation: int, path: str) -> None:
    """flock ``f``; a wait longer than NOTICE_AFTER_S is said on stderr, then every NOTICE_EVERY_S."""
    try:
        fcntl.flock(f, operation | fcntl.LOCK_NB)
        return
    except BlockingIOError:
        pass
    taken, began = threading.Event(), time.monotonic()

    def notice():
        pause = NOTICE_AFTER_S
        while not taken.wait(pause):
            print(waiting_message(path, time.monotonic() - began), file=sys.stderr, flush=True)
            pause = NOTICE_EVERY_S

    teller = threading.Thread(target=notice, daemon=True)
    teller.start()
    try:
        fcntl.flock(f, operation)   # blocking: taken the moment it is free
    finally:
        taken.set()
        teller.join()


def _command() -> str:
    """This process's command line on one line (``python -c`` code included), for a waiter to name."""
    try:
        words = Path("/proc/self/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        words = [sys.executable, *sys.argv]
    return " ".join(" ".join(words).split())


@contextlib.contextmanager
def _noted(path: str, mode: str):
    """This process noted as a holder of the lock at ``path`` while open."""
    note = Path(path + ".holders") / f"{socket.gethostname()}-{os.getpid()}.json"
    try:
        note.write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "mode": mode,
                                    "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": _command()}))
    except OSError:
        note = None   # the note only helps a waiter's message; the lock works without it
    try:
        yield
    finally:
        if note is not None:
            note.unlink(missing_ok=True)


@contextlib.contextmanager
def _host_turn(mode: str):
    path = os.environ.get(TIMING_LOCK_ENV)
    if not path:
        yield False
        return
    if _turn["depth"]:
        if _turn["mode"] == "shared" and mode == "exclusive":
            raise RuntimeError("a timing inside GPU work of the same process (quide.hostlock.gpu_work) "
                               "would wait for itself; time outside it")
        _turn["depth"] += 1
        try:
            yield True
        finally:
            _turn["depth"] -= 1
        return
    gate, main = _open_lock_files(path)
    with gate, main:
        if mode == "exclusive":
            _flock(gate, fcntl.LOCK_EX, path)
            _flock(main, fcntl.LOCK_EX, path)
        else:
            _flock(gate, fcntl.LOCK_SH, path)   # waits while a timer holds or awaits the host
            fcntl.flock(gate, fcntl.LOCK_UN)
            _flock(main, fcntl.LOCK_SH, path)
        _turn.update(mode=mode, depth=1)
        try:
            with _noted(path, "timing" if mode == "exclusive" else "GPU work"):
                yield True
        finally:
            _turn.update(mode=None, depth=0)   # closing the files releases both locks


def timing_turn():
    """Context manager: while it is open no other quide process of this host runs GPU work or
    timings, where ``QUIDE_TIMING_LOCK`` is set (else it does nothing). Yields whether it locked."""
    return _host_turn("exclusive")


def gpu_work():
    """Context manager for GPU work that must not overlap another process's timing (a training
    epoch, an accuracy pass); many may run at once. Does nothing where ``QUIDE_TIMING_LOCK`` is
    unset, and nothing extra inside a :func:`timing_turn` of the same process."""
    return _host_turn("shared")
