"""The master's shared table: one anonymous ``MAP_SHARED`` mapping created before any fork.

Every child the master forks inherits the same pages, so a child can publish its harakiri
deadlines and the master can read them without any IPC round trip (uWSGI keeps the same data in
its shared ``uwsgi.workers``/``uwsgi.spoolers`` arrays). Processes the master did not fork never
see this table: for them ``set_user_harakiri`` is a no-op and the pid queries answer 0/[].

Layout (all native int64, 8-byte aligned so a single store is never torn on the platforms we
run on):

    header: magic, version, nslots, spooler_frequency_ms (0 = use --spooler-frequency)
    slot i: pid, kind, ident, task_deadline_ms, user_deadline_ms, dir_index, task_fd, task_ino

A spooler under --spooler-harakiri publishes its current task (descriptor + 1, 0 for none, and
inode) so that the master can record a harakiri as a failed attempt of that task.

After the int64 fields, two name fields per slot (``NAME_BYTES`` each, UTF-8, NUL-padded): the
qualified name of the function each deadline (task, user) was armed for, so that the master's
harakiri line names it. A child writes one only when it arms a deadline (nothing is written for
a task or a handler without harakiri).

Deadlines are absolute ``time.monotonic()`` milliseconds: CLOCK_MONOTONIC is one clock for the
whole machine on Linux, so the master can compare a child's value with its own clock, and a wall
clock jump cannot trigger (or postpone) a kill.
"""

from __future__ import annotations

import mmap
import struct
import time

__all__ = ['KIND_SPOOLER', 'KIND_WORKER', 'NAME_BYTES', 'SharedTable', 'now_ms', 'qualified_name']

from . import _core

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

_MAGIC = 0x5544_5253_4842_4C31  # arbitrary tag, catches a mapping that is not ours
_VERSION = 1
_HEADER_FIELDS = 4
_SLOT_FIELDS = 8
_Q = struct.Struct('q')
NAME_BYTES = 96
_NAMES = (F_TASK_DEADLINE, F_USER_DEADLINE)  # one name per deadline field, in this order


def now_ms() -> int:
    return int(time.monotonic() * 1000)


def qualified_name(func: object) -> str:
    """``module.qualname`` of a function (what a harakiri line names)."""
    module = getattr(func, '__module__', None)
    qual = getattr(func, '__qualname__', None) or getattr(func, '__name__', None) or repr(func)
    return f'{module}.{qual}' if module else str(qual)


class SharedTable:
    """Fixed-size table of int64 fields in an anonymous shared mapping."""

    def __init__(self, nslots: int) -> None:
        if nslots < 0:
            raise ValueError('nslots must be >= 0')
        self.nslots = nslots
        self._names_at = 8 * (_HEADER_FIELDS + _SLOT_FIELDS * max(nslots, 1))
        size = self._names_at + NAME_BYTES * len(_NAMES) * max(nslots, 1)
        # fileno -1 = anonymous; mmap.mmap defaults to MAP_SHARED, which is what survives fork.
        self._mm = mmap.mmap(-1, size)
        self._put_raw(0, _MAGIC)
        self._put_raw(1, _VERSION)
        self._put_raw(2, nslots)
        self._put_raw(3, 0)

    # -- raw access -------------------------------------------------------------------------
    def _put_raw(self, index: int, value: int) -> None:
        _Q.pack_into(self._mm, 8 * index, int(value))

    def _get_raw(self, index: int) -> int:
        return int(_Q.unpack_from(self._mm, 8 * index)[0])

    def _index(self, slot: int, field: int) -> int:
        if not 0 <= slot < self.nslots:
            raise IndexError(f'shared table slot {slot} out of range (0..{self.nslots - 1})')
        return _HEADER_FIELDS + slot * _SLOT_FIELDS + field

    def get(self, slot: int, field: int) -> int:
        return self._get_raw(self._index(slot, field))

    def put(self, slot: int, field: int, value: int) -> None:
        self._put_raw(self._index(slot, field), value)

    # -- function names ------------------------------------------------------------------------
    def _name_at(self, slot: int, field: int) -> int:
        if not 0 <= slot < self.nslots:
            raise IndexError(f'shared table slot {slot} out of range (0..{self.nslots - 1})')
        return self._names_at + NAME_BYTES * (slot * len(_NAMES) + _NAMES.index(field))

    def set_name(self, slot: int, field: int, name: str) -> None:
        """Publish the function a deadline (``F_TASK_DEADLINE`` or ``F_USER_DEADLINE``) guards;
        cut to ``NAME_BYTES`` (on a character boundary)."""
        raw = name.encode('utf-8', 'replace')[:NAME_BYTES].decode('utf-8', 'ignore').encode()
        at = self._name_at(slot, field)
        self._mm[at : at + NAME_BYTES] = raw.ljust(NAME_BYTES, b'\0')

    def name(self, slot: int, field: int) -> str:
        """The function published for a deadline ('' when none)."""
        at = self._name_at(slot, field)
        return self._mm[at : at + NAME_BYTES].split(b'\0', 1)[0].decode('utf-8', 'replace')

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
        return self._get_raw(3) / 1000.0

    @spooler_frequency.setter
    def spooler_frequency(self, seconds: float) -> None:
        self._put_raw(3, int(seconds * 1000))
