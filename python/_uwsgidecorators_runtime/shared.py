"""The master's process table: a typed view of the table section of the instance's shared region.

The region (``_core.Region``, a file next to the control socket, see ``src/ipc/region.rs``) is
created by the master before any fork, so every child it forks inherits the same pages: a child
publishes its harakiri deadlines and the master reads them without any IPC round trip (uWSGI
keeps the same data in its shared ``uwsgi.workers``/``uwsgi.spoolers`` arrays). Processes the
master did not fork have no slot: for them ``set_user_harakiri`` is a no-op and the pid queries
answer 0/[].

Per slot (native int64, single loads and stores): pid, kind, ident, task_deadline_ms,
user_deadline_ms, dir_index, task_fd, task_ino. Table header word 0: the spooler frequency in ms
set at run time (0 = use --spooler-frequency).

A spooler under --spooler-harakiri publishes its current task (descriptor + 1, 0 for none, and
inode) so that the master can record a harakiri as a failed attempt of that task.

In the region's names section, two name fields per slot (``NAME_BYTES`` each, UTF-8, NUL-padded): the
qualified name of the function each deadline (task, user) was armed for, so that the master's
harakiri line names it. A child writes one only when it arms a deadline (nothing is written for
a task or a handler without harakiri).

Deadlines are absolute ``time.monotonic()`` milliseconds: CLOCK_MONOTONIC is one clock for the
whole machine on Linux, so the master can compare a child's value with its own clock, and a wall
clock jump cannot trigger (or postpone) a kill.
"""

from __future__ import annotations

import time

__all__ = ['KIND_SPOOLER', 'KIND_WORKER', 'NAME_BYTES', 'SharedTable', 'now_ms', 'qualified_name']

from . import _core

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# A slot's kind is the core's number for it (_core.Kind); 0 is a free slot.
KIND_FREE = 0
KIND_SPOOLER = _core.Kind.SPOOLER.code
KIND_WORKER = _core.Kind.WORKER.code

# Field indexes inside a slot.
F_PID = 0
F_KIND = 1
F_IDENT = 2
F_TASK_DEADLINE = 3  # armed by the runtime itself (--spooler-harakiri around a task)
F_USER_DEADLINE = 4  # armed by uwsgi.set_user_harakiri(); independent, as in uWSGI
F_DIR_INDEX = 5
F_TASK_FD = 6  # a spooler's claimed task file: its descriptor + 1 (0: no task), under harakiri
F_TASK_INO = 7  # ... and its inode number

_H_SPOOLER_FREQUENCY = 0  # table header word
NAME_BYTES = 96  # the region's name field (src/ipc/region.rs NAME_BYTES)
_NAMES = (F_TASK_DEADLINE, F_USER_DEADLINE)  # one name per deadline field, in this order


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def qualified_name(func: object) -> str:
    """``module.qualname`` of a function (what a harakiri line names)."""
    module = getattr(func, '__module__', None)
    qual = getattr(func, '__qualname__', None) or getattr(func, '__name__', None) or repr(func)
    return f'{module}.{qual}' if module else str(qual)


class SharedTable:
    """The process table of a ``_core.Region`` (slots of int64 fields)."""

    def __init__(self, region: Any) -> None:
        self.region = region
        self.nslots: int = region.nslots

    def _check(self, slot: int) -> None:
        if not 0 <= slot < self.nslots:
            raise IndexError(f'shared table slot {slot} out of range (0..{self.nslots - 1})')

    def get(self, slot: int, field: int) -> int:
        self._check(slot)
        return int(self.region.get(slot, field))

    def put(self, slot: int, field: int, value: int) -> None:
        self._check(slot)
        self.region.put(slot, field, int(value))

    # -- function names ------------------------------------------------------------------------
    def set_name(self, slot: int, field: int, name: str) -> None:
        """Publish the function a deadline (``F_TASK_DEADLINE`` or ``F_USER_DEADLINE``) guards;
        cut to ``NAME_BYTES`` (on a character boundary)."""
        self._check(slot)
        self.region.set_name(slot, _NAMES.index(field), name.encode('utf-8', 'replace').decode('utf-8'))

    def name(self, slot: int, field: int) -> str:
        """The function published for a deadline ('' when none)."""
        self._check(slot)
        return str(self.region.name(slot, _NAMES.index(field)))

    # -- slots --------------------------------------------------------------------------------
    def claim(self, slot: int, pid: int, kind: int, ident: int, dir_index: int = -1) -> None:
        """Record a freshly forked child; stale deadlines of a dead predecessor are cleared."""
        self.put(slot, F_TASK_DEADLINE, 0)
        self.put(slot, F_USER_DEADLINE, 0)
        self.put(slot, F_TASK_FD, 0)
        for field in _NAMES:
            self.set_name(slot, field, '')
        self.put(slot, F_KIND, kind)
        self.put(slot, F_IDENT, ident)
        self.put(slot, F_DIR_INDEX, dir_index)
        self.put(slot, F_PID, pid)

    def release(self, slot: int) -> None:
        self.put(slot, F_PID, 0)
        self.put(slot, F_TASK_DEADLINE, 0)
        self.put(slot, F_USER_DEADLINE, 0)

    def arm(self, slot: int, field: int, seconds: float) -> None:
        """Set a deadline ``seconds`` from now; 0 (or less) clears it."""
        self.put(slot, field, now_ms() + int(seconds * 1000) if seconds > 0 else 0)

    def expired(self, now: int | None = None) -> list[tuple[int, int, int]]:
        """(slot, pid, field) of every armed deadline that has passed."""
        now = now_ms() if now is None else now
        out = []
        for slot in range(self.nslots):
            pid = self.get(slot, F_PID)
            if pid <= 0:
                continue
            for field in (F_TASK_DEADLINE, F_USER_DEADLINE):
                deadline = self.get(slot, field)
                if 0 < deadline < now:
                    out.append((slot, pid, field))
        return out

    def pids(self, kind: int) -> list[int]:
        return [
            self.get(s, F_PID) for s in range(self.nslots) if self.get(s, F_KIND) == kind and self.get(s, F_PID) > 0
        ]

    def spooler_pids_by_dir(self, ndirs: int) -> list[int]:
        """First live spooler pid for each configured dir index (0 when none/external)."""
        out = [0] * ndirs
        for s in range(self.nslots):
            if self.get(s, F_KIND) != KIND_SPOOLER:
                continue
            d, pid = self.get(s, F_DIR_INDEX), self.get(s, F_PID)
            if 0 <= d < ndirs and pid > 0 and out[d] == 0:
                out[d] = pid
        return out

    # -- header -------------------------------------------------------------------------------
    @property
    def spooler_frequency(self) -> float:
        """Frequency set by uwsgi.set_spooler_frequency() (seconds), 0 when never set."""
        return int(self.region.header(_H_SPOOLER_FREQUENCY)) / 1000.0

    @spooler_frequency.setter
    def spooler_frequency(self, seconds: float) -> None:
        self.region.set_header(_H_SPOOLER_FREQUENCY, int(seconds * 1000))
