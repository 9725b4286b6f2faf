"""A small process that outlives a `kill -9` of `symmv build` just long enough to stop what the build started.

Prefect's ephemeral API server is a uvicorn subprocess of the CLI (and a process or Dask task runner adds
workers). The CLI stops them when it exits, but SIGKILL runs no exit handler: they would run on, orphaned,
holding a port and the Prefect database. PR_SET_PDEATHSIG would need a hook into Prefect's own Popen call;
instead `start()` launches `python -m symmv.watchdog <pid>`, which notes the CLI's descendants twice a
second (pid and start time, so a reused pid is never hit) and, once its parent is gone -- killed or exited --
terminates those still running, then exits. A descendant born in the last half second before the kill can
be missed.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 0.5
GRACE_S = 3.0  # SIGTERM first (uvicorn shuts down cleanly), SIGKILL after


def start() -> subprocess.Popen:
    """Watch this process (the CLI). In its own session: a Ctrl-C or a kill of the CLI's process group
    reaches the CLI, not the watchdog that cleans up after it."""
    return subprocess.Popen([sys.executable, "-m", "symmv.watchdog", str(os.getpid())], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time in clock ticks) from /proc/<pid>/stat, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name (field 2) may hold spaces and parentheses
    return fields[0], int(fields[1]), int(fields[19])


def descendants(root: int) -> dict[int, int]:
    """pid -> start time of every living descendant of `root`."""
    stats = {int(p): st for p in os.listdir("/proc") if p.isdigit() and (st := _stat(int(p))) is not None}
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = stats[child][2]
            todo.append(child)
    return found


def _alive(pid: int, started: int) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == started and st[0] != "Z"


def stop(processes: dict[int, int]) -> None:
    """SIGTERM each process still running (same pid, same start time), SIGKILL what is left after GRACE_S."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in processes.items():
            if _alive(pid, started):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in processes.items()):
            time.sleep(0.1)


def watch(parent: int) -> None:
    me, known = os.getpid(), {}
    while os.getppid() == parent:  # the parent's death reparents this process
        known = {p: s for p, s in descendants(parent).items() if p != me}
        time.sleep(POLL_S)
    stop(known)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))
