"""CPU seconds of processes from /proc (Linux), for benches that show who is the bottleneck.

A bench on a shared 2-core box reports, next to its wall time, the CPU time each process in the
pipeline spent over the same window (the broker, the database server, the service under test):
a process near one core per wall second is the limit; processes that together need more cores
than the box has are the limit together.

`tree_cpu_s(pid)` counts a process and its children: its own time, the time of its children
that have already exited and been waited for (the kernel adds it to the parent's `cutime`,
`cstime`) and that of its live children, so a server that forks a backend per connection
(PostgreSQL) is counted whole, also across backends that exit within the window.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (field 3 first); None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def cpu_s(pid: int, *, children: bool = False) -> float:
    """User + system CPU seconds of `pid` (with its waited-for children's if `children`)."""
    fields = _fields(pid)
    if fields is None:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks * _TICK_S


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _fields(int(entry.name))
            if fields is not None and int(fields[1]) == pid:  # ppid (field 4)
                out.append(int(entry.name))
    return out


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid` and all its children, exited or live (one level: a server's
    forked workers)."""
    return cpu_s(pid, children=True) + sum(cpu_s(c, children=True) for c in _children(pid))
