"""The Rust extension ``_uwsgidecorators_runtime._core`` (also reachable as ``uwsgidecorators._core``): its contract with the Python package.

This stub is the one description of the names the extension exports (CI checks it against the
built extension with ``python -m mypy.stubtest _uwsgidecorators_runtime._core``). Paths are accepted as
``str``, ``bytes`` or ``os.PathLike``; paths returned are ``bytes``. Every blocking call releases
the GIL and returns to Python for a signal's handler to run (Ctrl-C). Bad input raises
``ValueError`` (or ``TypeError``) naming what is wrong.
"""

import os
from collections.abc import Callable, Iterable
from typing import Any, final

from typing_extensions import disjoint_base

_Path = str | bytes | os.PathLike[str] | os.PathLike[bytes]

__all__ = [
    '__version__',
    'encode_spool',
    'decode_spool',
    'spool_write',
    'spool_job',
    'spool_pairs',
    'spool_read',
    'spool_list',
    'hostname',
    'recv_signals',
    'check_signal_target',
    'Spooler',
    'Task',
    'MasterLoop',
    'CronSpec',
    'DirectSender',
    'Region',
    'lock',
    'unlock',
    'is_locked',
    'forget_lock_region',
    'WorkerMonitors',
    'direct_socket_path',
    'bind_datagram',
    'MuleQueues',
    'MuleReceiver',
    'mule_queue_path',
    'mule_wake_path',
    'mule_msg',
    'set_mule_sender',
    'set_parent_death_signal',
    'Supervisor',
    'Action',
    'Kind',
    'control_raise',
    'control_register',
    'control_clock',
    'control_timer',
    'control_cron',
    'control_file_monitor',
    'control_reload',
    'fail_held_task',
    'insecure_spool_dir',
    'ErlangNode',
    'ErlangPid',
    'ErlangRef',
    'erlang_encode',
    'erlang_decode',
    'rpc_listen',
    'rpc_call',
    'RpcServer',
]

__version__: str
"""The package version (Cargo.toml's)."""

# ---------------------------------------------------------------- spool files

def encode_spool(vars: Iterable[tuple[bytes, bytes]], body: bytes = b'') -> bytes:
    """A uwsgi packet (header, vars, body) as uWSGI writes it to a spool file.

    Limits (a var over 64 KiB, the vars over 64 KiB) raise ``SpoolTooLargeError`` (a ``ValueError``).
    """

def decode_spool(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """``(vars, body)`` of a spool file's bytes; malformed bytes raise ``SpoolPacketError`` (a
    ``ValueError``) naming the offset and the fault."""

def spool_write(
    directory: _Path, vars: Iterable[tuple[bytes, bytes]], body: bytes = b'', durable: bool = False
) -> bytes:
    """Write one task into ``directory`` and return its path.

    The name is uWSGI's (``uwsgi_spoolfile_on_<host>_<pid>_<counter>_<rand>_<sec>_<usec>``, the
    counter per process and kept across fork); a ``priority`` var puts it in that subdirectory
    (digits only, else ``ValueError``); an ``at`` var becomes its mtime. ``durable``: fsync the
    file and the directory before returning.
    """

def spool_job(job: object, spoolers: list[bytes], durable: bool = False) -> bytes | None:
    """``uwsgi.spool(job)`` for the common case: every key and value exactly ``bytes``, a known
    ``spooler``, a numeric ``priority``, vars within 64 KiB. Returns the new file's path, or None
    when the job needs the shim's full treatment (conversions of other value types, and the
    errors uWSGI raises), which then handles it from the start: the caller's dict loses a bytes
    ``body`` only when the job is written here."""

def spool_pairs(
    spoolers: list[bytes], vars: Iterable[tuple[bytes, bytes]], body: bytes = b'', durable: bool = False
) -> bytes:
    """``uwsgi.spool(job)`` once the shim converted the job's values to bytes and took its body out:
    the same checks as ``spool_job`` (which spooler, priority, ``at``, vars within 64 KiB), raised
    with uWSGI's messages (``ValueError`` "unable to spool job: ...", ``SpoolTooLargeError``) and
    logged with uWSGI's lines, then the write. ``spoolers``: the configured directories, the first
    the default. Returns the new file's path."""

def spool_read(id: _Path) -> dict[Any, bytes] | None:
    """Read one task (by id: for a spool directory, the file's path) as
    ``uwsgi.spooler_get_task`` does: None if it is missing, locked by a running spooler or
    malformed."""

def spool_list(directory: _Path) -> list[bytes]:
    """The ids of the tasks the queue at ``directory`` holds (for a spool directory, the task
    files' full paths), as ``uwsgi.spooler_jobs`` lists them."""

def hostname() -> str:
    """The machine's hostname as uWSGI reports it (the ``<host>`` of spool file names)."""

# ---------------------------------------------------------------- signals

def check_signal_target(target: str) -> None:
    """Check a uWSGI signal target string as the master will (``ValueError`` naming what is
    wrong), so a process without the master refuses exactly what the master would."""

def recv_signals(
    private: int,
    shared: int,
    wake_fd: int,
    timeout: float | None = None,
    direct: int = -1,
    notify: int = -1,
    monitors: WorkerMonitors | None = None,
) -> bytes:
    """Wait for signals on a process's channels and return their numbers, one byte each.

    ``private`` and ``direct``: every byte waiting is taken; ``shared``: one datagram (the other
    processes of the kind take the rest); or until ``wake_fd`` is readable (drained; returns an
    empty result so the caller can look at its stop flag). A negative fd is not watched. The GIL
    is released while waiting; Ctrl-C is checked every 100 ms, or only when ``wake_fd`` fires if
    it is given (it must then be the process's signal wake-up fd). ``notify`` is one more
    wake-up pipe (``uwsgi.signal_wait``'s: another thread ran the awaited signal). ``monitors``:
    the file monitors a worker reads itself (``MasterLoop.worker_monitors``), polled too; their
    signals come after the channels'. ``timeout`` None: no limit.
    """

def set_parent_death_signal(sig: int) -> None:
    """``prctl(PR_SET_PDEATHSIG, sig)``: this process gets Unix signal ``sig`` when its parent
    dies. ``ValueError`` if ``sig`` is not 1 to 64, ``OSError`` if the kernel refuses."""

def direct_socket_path(control_path: _Path, worker_id: int) -> str:
    """The path of worker ``worker_id``'s direct socket for the control socket ``control_path``."""

def bind_datagram(path: _Path) -> int:
    """A non-blocking datagram socket bound at ``path`` (a stale socket file there is replaced);
    the caller owns the returned descriptor. ``OSError`` names the path."""

def mule_queue_path(control_path: _Path) -> str:
    """The path of the mule queue file for the control socket ``control_path``."""

def mule_wake_path(control_path: _Path, mule_id: int) -> str:
    """The path of mule ``mule_id``'s wake socket for the control socket ``control_path``."""

def mule_msg(message: bytes | str, mule: int | str | bytes | None = None, /) -> bool:
    """``uwsgi.mule_msg``: queue ``message`` for mule ``mule`` (None or 0: any one mule; N: mule
    N; str or bytes: one mule of that farm); returns True. The first call asks
    ``_uwsgidecorators_runtime.mules.register_sender`` for the master's queues (its errors are
    this call's: ``MasterNotFoundError``, ``ValueError`` without mules)."""

def set_mule_sender(queues: MuleQueues | None, timeout: float | None = None) -> None:
    """Make ``mule_msg`` send on ``queues``, waiting up to ``timeout`` seconds for room (None: the
    master's ``--mule-send-timeout``); None: find them again at the next send."""

@final
class MuleQueues:
    """The mule message queues of one master (a file next to its control socket), mapped in
    this process: one bounded queue per mule, per farm and one for any mule."""

    @staticmethod
    def create(
        control: _Path,
        mules: int,
        farms: list[tuple[str, list[int]]],
        msg_size: int,
        send_timeout: float = 5.0,
        queue_bytes: int = ...,
    ) -> tuple[MuleQueues, int]:
        """The master's: create the queues for ``mules`` mules and ``farms`` [(name, [mule
        ids])] next to the control socket, or take over the file a previous master left there.
        Returns the queues and the number of messages found waiting. ``send_timeout``: how long
        every sender waits for room in a full queue (``--mule-send-timeout``)."""
    @staticmethod
    def open(control: _Path) -> MuleQueues:
        """Any process's: the queues of the master whose control socket is ``control``."""
    @property
    def mules(self) -> int:
        """The number of mules."""
    @property
    def msg_size(self) -> int:
        """The largest message in bytes (``--mule-msg-size``)."""
    @property
    def path(self) -> str:
        """The file's path."""
    def farms(self) -> list[tuple[str, list[int]]]:
        """The farms: [(name, [mule ids])], in declaration order."""
    def send(self, msg: bytes | str, target: int | str | bytes | None = None, timeout: float | None = None) -> None:
        """Queue ``msg`` for ``target`` (None or 0: any one mule; N: mule N; str or bytes: one
        mule of that farm). A full queue is waited on (GIL released, Ctrl-C works) up to
        ``timeout`` seconds (None: the master's ``--mule-send-timeout``), then ``MuleQueueFullError``; an oversized message, an unknown mule
        or farm raise ``ValueError``."""
    def recv(
        self,
        mule: int,
        *,
        own: bool = True,
        farms: bool = True,
        timeout: float | None = None,
        private: int = -1,
        shared: int = -1,
        farm_signals: list[int] = ...,
        wake_fd: int = -1,
        wake_sock: int = -1,
    ) -> tuple[int | None, bytes | None, bytes]:
        """Mule ``mule``'s wait: claim the next message of its own and the any-mule queue
        (``own``) and of its farms (``farms``), or read signals from ``private``, ``shared`` and
        ``farm_signals``. Returns (token, message, signal numbers as bytes); (None, None, b"") at
        ``timeout``.
        Acknowledge a message with ``ack(token)`` once it ran."""
    def ack(self, token: int) -> None:
        """The message ``token`` ran: remove it from its queue."""
    def reclaim(self, mule: int, pid: int) -> tuple[int, int]:
        """Mule ``mule``'s process ``pid`` died: what it had claimed is queued again, unless that
        message has now killed 3 mules (then dropped). Returns (requeued, dropped)."""
    def drop_claims(self, pid: int) -> int:
        """Process ``pid`` is about to be killed for the message it runs (harakiri): drop what it
        claimed, as uWSGI loses it. Returns how many."""
    def pending(self) -> int:
        """Messages queued or running."""
    def retire_if_empty(self) -> int:
        """At the master's real exit: remove the file when nothing is queued (returns 0); else
        keep it for the next master and return how many messages it holds."""

@final
class MuleReceiver:
    """One mule thread's receiving end, built once (its queues, mule id, channels): the
    per-message call of ``uwsgi.mule_get_msg`` and the built-in loop."""

    def __new__(
        cls,
        queues: MuleQueues,
        mule: int,
        private: int = -1,
        shared: int = -1,
        farm_signals: list[int] = ...,
        wake_fd: int = -1,
        wake_sock: int = -1,
    ) -> MuleReceiver:
        """Mule ``mule``'s receiver: signals come from ``private``, ``shared`` and
        ``farm_signals`` (fds, -1: none); waits sleep in poll on ``wake_sock`` and ``wake_fd``
        (the signal wake-up fd, only in the thread that runs signal handlers)."""
    def recv(self, own: bool, farms: bool, signals: bool, timeout: float | None = None) -> tuple[bytes | None, bytes]:
        """Acknowledge the message taken last, then wait for the next one (own and any-mule
        queues: ``own``; farms' queues: ``farms``) or for signals (``signals``). Returns
        (message, b""), (None, signal numbers), or (None, b"") after ``timeout`` seconds."""
    def serve(
        self,
        hook_of: object,
        stop: object,
        dispatch: Callable[[bytes, Callable[[bytes], object] | None], object],
        direct: bool,
        on_error: Callable[[BaseException], object],
        signalled: Callable[[bytes], object],
        state: object,
        gen: int,
    ) -> bool:
        """The built-in loop of a plain mule: run each message until ``stop.requested`` (the last
        one acknowledged: True) or until ``state._gen`` is no longer ``gen`` (False: serve again
        on a new receiver). A message goes to ``hook_of.mule_msg_hook(message)`` when ``direct``
        (an ``Exception`` it raises goes to ``on_error``), else and when no hook is set to
        ``dispatch(message, hook)``; signals read meanwhile go to ``signalled(nums)``."""
    def ack(self) -> None:
        """Acknowledge the message taken last (it ran); nothing when none is held."""
    @property
    def holding(self) -> bool:
        """Whether a message taken by ``recv`` waits for its acknowledgement."""

@final
class WorkerMonitors:
    """The file monitors a worker reads itself: those whose signal went to this worker
    (``workerN``) or to any worker (``worker``) when they were added before the first fork
    (from ``MasterLoop.worker_monitors``). Signals read there that the table now sends elsewhere
    go there: to their worker directly, else to the master."""

    def fds(self) -> list[int]:
        """The inotify descriptors this worker reads (to wait on them beside other work, such as
        serving RPC calls)."""

@final
class DirectSender:
    """Direct delivery to one worker: the shared 512-byte table of ``workerN`` (and ``worker``)
    targets and the workers' direct sockets (from ``MasterLoop.direct_sender``)."""

    def send(self, num: int) -> bool:
        """Deliver ``num`` straight to its worker; False: send it to the master instead."""
    def register(self, num: int, target: str) -> None:
        """A worker registered ``num`` for ``target`` at run time: the table says so at once."""
    def worker(self, num: int) -> int | None:
        """The worker ``num`` goes to directly, or None (through the master)."""

# ---------------------------------------------------------------- the shared region

@final
class Region:
    """The instance's shared region: the process table (with the names of the functions its
    deadlines guard), the direct-delivery routes and the lock table (``src/ipc/region.rs``).
    Made with one of the three static constructors."""

    @staticmethod
    def create(path: _Path, nslots: int, nlocks: int) -> Region:
        """Create the region file at ``path`` (mode 0600) for ``nslots`` process slots and
        ``nlocks`` locks (0 to 65536 each), replacing a file a killed master left there. Raises
        ``OSError`` (e.g. ``FileExistsError`` for a leftover temporary file it cannot remove)."""
    @staticmethod
    def open(path: _Path) -> Region:
        """Map the region a master created at ``path``. ``FileNotFoundError`` if there is none;
        ``OSError`` naming the path if the file is not a region of this layout version."""
    @staticmethod
    def private(nlocks: int, nslots: int = 0) -> Region:
        """An anonymous region, shared only with the children this process forks afterwards."""
    @property
    def path(self) -> str | None:
        """The region's file, None for a private one."""
    @property
    def nslots(self) -> int:
        """Number of process slots."""
    @property
    def nlocks(self) -> int:
        """Number of locks (numbers 0 to nlocks - 1)."""
    @property
    def creator(self) -> int:
        """The pid that created the region."""
    def remove(self) -> None:
        """Remove the region's file (the master at exit); mappings stay valid."""
    def get(self, slot: int, field: int) -> int:
        """Field ``field`` (0-7) of process slot ``slot``; ``IndexError`` out of range."""
    def put(self, slot: int, field: int, value: int) -> None:
        """Set field ``field`` of process slot ``slot``; ``IndexError`` out of range."""
    def header(self, index: int) -> int:
        """Word ``index`` (0-3) of the process table's header (0: spooler frequency in ms)."""
    def set_header(self, index: int, value: int) -> None:
        """Set word ``index`` of the process table's header."""
    def name(self, slot: int, which: int) -> str:
        """Name field ``which`` (0: the task deadline's, 1: the user deadline's) of process slot
        ``slot``: the function that deadline was armed for ('' when none; bytes that are not
        UTF-8 read as U+FFFD). ``IndexError`` out of range."""
    def set_name(self, slot: int, which: int, name: str) -> None:
        """Set name field ``which`` of process slot ``slot``, cut to 96 bytes on a character
        boundary. ``IndexError`` out of range."""
    def reset_table(self) -> None:
        """Clear the process table (header words, every slot's fields and names); routes and
        locks are untouched (a master adopting the region after a reload)."""
    def direct_sender(self, control: _Path) -> DirectSender:
        """A sender for signals aimed at one worker, reading this region's routes (an attached
        process's; ``control``: the master's control socket, next to the workers' sockets)."""
    def lock(self, n: int = 0) -> None:
        """Take lock ``n``. A free lock is taken at once with the GIL held; a busy one is
        waited for with the GIL released, checking for signals every 100 ms (Ctrl-C raises
        ``KeyboardInterrupt``). A dead holder's lock is taken over at once and one warning is
        logged on ``uwsgidecorators.lock`` naming its pid. ``ValueError``: ``n`` out of range;
        ``RuntimeError``: this thread already holds it."""
    def unlock(self, n: int = 0) -> None:
        """Release lock ``n``. ``RuntimeError``: this thread does not hold it; ``ValueError``: out
        of range."""
    def is_locked(self, n: int = 0) -> bool:
        """Whether lock ``n`` is held by anyone (this thread included); a dead holder's lock is
        taken over and released on the way (logged as by ``lock``)."""
    def last_taker(self, n: int = 0) -> int:
        """The pid that last took lock ``n`` (0: nobody yet)."""

def lock(n: int = 0, /) -> None:
    """``uwsgi.lock``: ``Region.lock`` on this process's region, which is resolved on the first
    call by ``_uwsgidecorators_runtime.region.region()`` (the master's, or a private one) and kept."""

def unlock(n: int = 0, /) -> None:
    """``uwsgi.unlock``: ``Region.unlock`` on this process's region."""

def is_locked(n: int = 0, /) -> bool:
    """``uwsgi.is_locked``: ``Region.is_locked`` on this process's region."""

def forget_lock_region() -> None:
    """Resolve the region again at the next ``lock`` call (the configuration changed)."""

# ---------------------------------------------------------------- the spooler

@final
class Task:
    """A claimed task; its file stays locked until one outcome method (``ok``, ``retry``,
    ``failed``, ``release``) is called."""

    @property
    def id(self) -> bytes:
        """The task's opaque id (for a spool directory, the file's full path)."""
    @property
    def workdir(self) -> bytes | None:
        """Where the task runs, when it differs from the queue's home (a priority subdirectory)."""
    @property
    def name(self) -> bytes:
        """The file's basename."""
    @property
    def path(self) -> bytes:
        """The file's full path."""
    @property
    def in_subdir(self) -> bool:
        """True for a task of a priority subdirectory (its file is not directly in the spool dir)."""
    @property
    def attempts(self) -> int:
        """Failures recorded before this run."""
    @property
    def vars(self) -> list[tuple[bytes, bytes]]:
        """The vars in file order."""
    @property
    def body(self) -> bytes:
        """The packet's body (empty when there is none)."""
    def plugin_dict(self) -> dict[Any, bytes]:
        """The dict real uWSGI's plugin passes to ``uwsgi.spooler``."""
    def ok(self) -> None:
        """Success: delete the file (on a reaper thread; ``Spooler.flush`` waits for it)."""
    def retry(self) -> int:
        """Keep the file; it runs again after the spooler frequency. Returns the unix time."""
    @property
    def fd(self) -> int:
        """The claimed file's descriptor (the master's harakiri record finds the task by it)."""
    @property
    def ino(self) -> int:
        """The claimed file's inode number."""
    def failed(self, reason: str = ...) -> tuple[int, int | None, bytes | None]:
        """The task raised (``reason``: the traceback, written to the dead letter's ``.reason``). Returns ``(attempts, retry_at, dead_path)``: ``retry_at`` (unix time)
        when it is kept, ``dead_path`` when it was moved to the dead-letter folder."""
    def release(self) -> None:
        """Give the task back unchanged."""

@final
class Spooler:
    """One spooler process's queue over a spool directory: inotify plus a periodic scan, claims
    by OFD lock (safe beside other spoolers, ours or uWSGI's).

    ``frequency``: scan period (s); ``retry_delay``/``retry_max_delay``: back-off of failed
    tasks (s); ``max_attempts``: failures before the task moves to ``dead/`` (0: retry for
    ever); ``numeric_names``: also take all-digit file names at the top level (uWSGI's
    ``spooler-ordered``); ``share=(i, n)``: this is process ``i`` of ``n`` over the same
    directory and, within one second of enqueue time, takes its share of the files first.
    """

    def __new__(
        cls,
        directory: _Path,
        *,
        frequency: float = 30.0,
        retry_delay: float = 1.0,
        retry_max_delay: float = 3600.0,
        max_attempts: int = 0,
        numeric_names: bool = False,
        share: tuple[int, int] = (0, 1),
        trusted_uids: list[int] = ...,
    ) -> Spooler: ...
    @property
    def directory(self) -> bytes:
        """The spool directory (realpath) as bytes."""
    @property
    def home(self) -> bytes:
        """Where tasks run unless they name their own ``workdir`` (the spool directory)."""
    def pending(self) -> int:
        """Tasks waiting (ready now or later) as far as this spooler knows."""
    @property
    def unreadable(self) -> int:
        """Task files this spooler could not open (permission denied), each logged once."""
    def wake(self) -> None:
        """Make a blocked ``next_task`` return None soon. Safe from a signal handler or another thread."""
    def rescan(self) -> None:
        """List the directory again before the next task (what SIGUSR1 does to uWSGI's spooler).
        Safe from a signal handler or another thread."""
    def flush(self) -> None:
        """Wait until every task finished with ``ok`` is deleted (deletion runs on reaper threads)."""
    def next_task(self, timeout: float | None = None) -> Task | None:
        """Claim the next task, waiting up to ``timeout`` seconds (None: for ever)."""
    @property
    def frequency(self) -> float:
        """The scan period in seconds (``uwsgi.set_spooler_frequency`` sets it)."""
    @frequency.setter
    def frequency(self, secs: float) -> None: ...
    def watch_fd(self, fd: int) -> None:
        """Also make ``next_task`` return None when ``fd`` is readable (a signal channel to read)."""
    def watch_wakeup_fd(self, fd: int) -> None:
        """Watch the non-blocking read end of the pipe given to ``signal.set_wakeup_fd``: a Unix
        signal then makes ``next_task`` return None at once, and an idle ``next_task`` sleeps
        without polling for signals."""

# ---------------------------------------------------------------- the master

@final
class CronSpec:
    """A cron entry: uWSGI's five integers (``from_uwsgi``) or a crontab string."""

    def __new__(cls, text: str) -> CronSpec: ...
    @staticmethod
    def from_uwsgi(minute: int, hour: int, day: int, month: int, weekday: int) -> CronSpec:
        """``uwsgi.add_cron``'s integers: -1 any, -N every N."""
    def matches(self, year: int, month: int, day: int, hour: int, minute: int) -> bool:
        """True if the wall-clock minute matches."""
    def next_after(
        self, year: int, month: int, day: int, hour: int, minute: int
    ) -> tuple[int, int, int, int, int] | None:
        """The first matching wall-clock minute strictly after the given one, as a tuple."""
    def next_fire(self, after: float, tz: str | None = None) -> int | None:
        """The first instant (unix seconds) strictly after ``after`` whose wall-clock minute
        matches in time zone ``tz`` (None: the system's), each wall-clock minute at most once."""
    def to_uwsgi(self) -> tuple[int, int, int, int, int] | None:
        """The five ``uwsgi.add_cron`` integers with the same meaning, or None if uWSGI cannot say it."""

@final
class MasterLoop:
    """The master's event loop: control socket, signal table and routing, timers, cron, file
    monitors. ``wakeup_fd``: the read end of the master's ``signal.set_wakeup_fd`` pipe;
    ``test_clock``: control datagrams may move the wall clock cron sees (tests only);
    ``control_fd``: a control socket already bound to ``control_path`` by this process before it
    re-executed itself (a reload), adopted instead of bound again; ``region``: the instance's
    region, whose routes section the loop mirrors its signal table into (attached processes read
    it for direct delivery)."""

    def __new__(
        cls,
        control_path: _Path,
        wakeup_fd: int | None = None,
        test_clock: bool = False,
        control_fd: int | None = None,
        region: Region | None = None,
    ) -> MasterLoop: ...
    def register_signal(self, num: int, target: str) -> None:
        """``uwsgi.register_signal``: route signal ``num`` to ``target``."""
    def signal_registered(self, num: int) -> bool:
        """Whether signal ``num`` has a target."""
    def add_channel(self, kind_name: str, id: int, fd: int) -> None:
        """A child's private channel (``kind_name`` 'worker', 'spooler' or 'mule', its id, the
        master's end)."""
    def remove_channel(self, kind_name: str, id: int) -> None:
        """Forget a child's private channel (it exited)."""
    def add_queue(self, kind_name: str, fd: int) -> None:
        """The shared queue of a kind (the "first available" targets)."""
    def add_farm(self, name: str, members: list[int], fd: int) -> None:
        """A farm: its member mule ids and the write end of its shared signal queue."""
    def raise_signal(self, num: int) -> None:
        """Route signal ``num`` now, as a child's ``uwsgi.signal`` does."""
    def add_timer(self, num: int, secs: float, iterations: int = 0) -> None:
        """Raise ``num`` every ``secs`` seconds (``iterations`` 0: for ever)."""
    def add_cron(self, num: int, spec: CronSpec, tz: str | None = None, catch_up: bool = False) -> None:
        """Raise ``num`` at each minute ``spec`` matches in ``tz`` (None: the system's local
        zone); ``catch_up``: a minute missed while the master was stopped or the machine slept
        runs once, late (uWSGI skips it)."""
    def add_file_monitor(self, num: int, path: _Path, recursive: bool = False) -> None:
        """Raise ``num`` when ``path`` changes (survives replace-by-rename)."""
    def add_file_hook(self, hook: int, path: _Path) -> None:
        """Report ``('file_hook', hook, '')`` from ``step`` when ``path`` changes; no signal is
        raised (the master's own watches: ``--touch-reload``, ``--py-autoreload``)."""
    def keep_control_across_exec(self) -> int:
        """The control socket's descriptor made inheritable for a reload's ``exec``; the socket
        file is then no longer removed when this loop is dropped."""
    def set_clock_offset(self, offset: int) -> None:
        """Move the wall clock used by cron (``offset`` seconds from the real one) and re-plan
        the cron entries."""
    def wall_time(self) -> float:
        """The wall clock cron sees, in unix seconds."""
    def step(self, timeout: float = 1.0) -> list[tuple[str, int, str]]:
        """Run the loop for up to ``timeout`` seconds (or until a Unix signal wakes it) and return
        the events to log, as ``(kind, signum, detail)`` tuples; ``('file_hook', hook, '')`` for a
        file hook, ``('reload', sender_pid, '')`` for a reload datagram."""
    def direct_sender(self) -> DirectSender:
        """A sender for signals aimed at one worker (its own socket, the shared table); a child
        takes one before ``close_in_child``."""
    def worker_monitors(self, worker_id: int) -> WorkerMonitors | None:
        """In worker ``worker_id``, just forked (before ``close_in_child``): the file monitors this
        worker reads itself (one hop), to pass to ``recv_signals``; None if it reads none."""
    def close_in_child(self) -> None:
        """In a forked child: close the inherited descriptors, leaving the master's socket file."""

@final
class Supervisor:
    """The master's decisions about its children as a pure state machine.

    ``slots``: one ``(label, recycles)`` per child the master keeps alive. Each event method
    returns the :class:`Action` objects to carry out, in order. A child dead within
    ``quick_death`` s is respawned after a back-off doubling from ``first_backoff`` to
    ``max_backoff``; ``stop`` SIGTERMs the children, lets them run up to ``mercy`` s, then
    SIGKILLs the rest and waits up to ``kill_grace`` s for them before exiting.
    """

    def __new__(
        cls,
        slots: list[tuple[str, bool]],
        *,
        quick_death: float = 1.0,
        first_backoff: float = 0.25,
        max_backoff: float = 8.0,
        mercy: float = 30.0,
        kill_grace: float = 10.0,
    ) -> Supervisor: ...
    def start(self, now: float) -> list[Action]:
        """Start: spawn every slot."""
    def spawned(self, slot: int, pid: int, now: float) -> list[Action]:
        """The fork of ``slot`` made ``pid``."""
    def spawn_failed(self, slot: int, error: str, now: float) -> list[Action]:
        """The fork of ``slot`` failed with ``error``: it is retried after the back-off."""
    def exited(self, pid: int, status: int, now: float) -> list[Action]:
        """``pid`` exited; ``status`` is the raw status from ``os.waitpid``."""
    def harakiri(
        self, slot: int, pid: int, now: float, what: str = 'harakiri', function: str = ''
    ) -> list[Action]:
        """A harakiri deadline of ``pid`` passed; ``what`` names it and ``function`` the function
        it guarded ('' when unknown), for the log line."""
    def reload(self, now: float, why: str = 'reload') -> list[Action]:
        """A graceful reload: every child is stopped (SIGTERM, up to ``mercy`` for running tasks),
        then ``Action.Reload()``. A stop request during it turns it into a stop."""
    def restart(self, slots: list[int], now: float, why: str = 'restart') -> list[Action]:
        """Restart these slots gracefully: SIGTERM, respawned at once when they exit."""
    def stop(self, now: float, why: str = 'stop') -> list[Action]:
        """Stop requested; ``why`` names the request (e.g. "SIGTERM"), for the log line. A second
        request while stopping kills the rest at once."""
    def tick(self, now: float) -> list[Action]:
        """Time passed: respawns due, mercy or grace ended."""
    def next_deadline(self) -> float | None:
        """When ``tick`` must be called next at the latest (None: only on events)."""
    def pid(self, slot: int) -> int | None:
        """The pid in ``slot``, if it runs."""
    @property
    def finished(self) -> bool:
        """True once ``Action.Exit`` was returned."""

def fail_held_task(
    fd_path: str | bytes,
    ino: int,
    root: str | bytes,
    *,
    reason: str,
    retry_delay: float = ...,
    retry_max_delay: float = ...,
    max_attempts: int = ...,
) -> tuple[int, int | None, bytes | None] | None:
    """Record a failed attempt (a harakiri) on the task a killed spooler held open as ``fd_path``
    (``/proc/<pid>/fd/<n>``), if it is still inode ``ino`` under ``root``: back-off, or the
    dead-letter folder past ``max_attempts``. Returns what ``Task.failed`` returns, or None when
    the file is no longer that task."""

def insecure_spool_dir(directory: str | bytes) -> str | None:
    """Why ``directory`` must not be a spool directory (others can write it), or None."""

@disjoint_base
class Action:
    """One thing the master must do, returned by :class:`Supervisor`'s event methods: one class
    per kind, for ``match``: ``case Action.Spawn(slot): ...``."""

    @final
    class Spawn(Action):
        """Fork the child of ``slot``."""

        __match_args__ = ('slot',)
        def __new__(cls, slot: int) -> Action.Spawn: ...
        @property
        def slot(self) -> int:
            """The slot to fork."""

    @final
    class Term(Action):
        """Send SIGTERM to ``pid`` (if it is still the master's child)."""

        __match_args__ = ('pid',)
        def __new__(cls, pid: int) -> Action.Term: ...
        @property
        def pid(self) -> int:
            """The child to signal."""

    @final
    class Kill(Action):
        """Send SIGKILL to ``pid`` (if it is still the master's child)."""

        __match_args__ = ('pid',)
        def __new__(cls, pid: int) -> Action.Kill: ...
        @property
        def pid(self) -> int:
            """The child to signal."""

    @final
    class Log(Action):
        """Log ``message`` at ``level`` (``'info'``, ``'warning'`` or ``'error'``)."""

        __match_args__ = ('level', 'message')
        def __new__(cls, level: str, message: str) -> Action.Log: ...
        @property
        def level(self) -> str:
            """``'info'``, ``'warning'`` or ``'error'``."""
        @property
        def message(self) -> str:
            """The line to log."""

    @final
    class Exit(Action):
        """Exit the master with ``code`` (every child is gone)."""

        __match_args__ = ('code',)
        def __new__(cls, code: int) -> Action.Exit: ...
        @property
        def code(self) -> int:
            """The master's exit status."""

    @final
    class Reload(Action):
        """Every child is gone after a reload request: re-execute the master."""

        __match_args__ = ()
        def __new__(cls) -> Action.Reload: ...

# ---------------------------------------------------------------- control datagrams
# The master's control datagrams, encoded by the core (their format: src/proto/control.rs). The
# caller checks the values first (the master judges them again when it applies them); a value
# outside its wire type raises OverflowError, a zone name over 255 bytes ValueError.

def control_raise(num: int) -> bytes:
    """Raise signal ``num`` (0..255)."""

def control_register(num: int, target: str) -> bytes:
    """A worker registered ``num`` for ``target`` at run time."""

def control_clock(seconds: int) -> bytes:
    """Move the master's test wall clock to now + ``seconds`` (honoured only with its test clock on)."""

def control_timer(num: int, secs: float, iterations: int) -> bytes:
    """A timer raising ``num`` every ``secs`` s, ``iterations`` times (0: for ever; below 2**32)."""

def control_cron(num: int, catch_up: bool, tz: str | None, form: str | tuple[int, int, int, int, int]) -> bytes:
    """A cron entry raising ``num``: ``form`` is a crontab string or uWSGI's five integers;
    ``tz`` an IANA zone name (None: the master's local time)."""

def control_file_monitor(num: int, recursive: bool, path: bytes) -> bytes:
    """A file monitor raising ``num`` when ``path`` (absolute, raw bytes) changes."""
def control_reload(pid: int) -> bytes:
    """``uwsgi.reload()``: ask the master for a graceful reload (``pid``: the sender's, logged)."""

# ---------------------------------------------------------------- process kinds

@final
class Kind:
    """The kinds of process the master forks (the one list is the core's ``signal::Kind``).
    Compares equal to its number (``int(kind)``), the one the shared process table stores."""

    WORKER: Kind
    SPOOLER: Kind
    MULE: Kind
    ERLANG: Kind
    def __int__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...
    @property
    def label(self) -> str:
        """The name in target strings and logs: ``'worker'``, ``'spooler'``, ``'mule'``, ``'erlang'``."""
    @property
    def code(self) -> int:
        """The number the shared process table stores (0 there is a free slot)."""

# ---------------------------------------------------------------- the Erlang node

@final
class ErlangPid:
    """An Erlang process id (``<id.serial>`` on ``node``): a message's sender, or where to send."""

    def __new__(cls, node: str, id: int, serial: int, creation: int) -> ErlangPid: ...
    @property
    def node(self) -> str:
        """The node the process lives on (``name@host``)."""
    @property
    def id(self) -> int:
        """The process number on its node."""
    @property
    def serial(self) -> int:
        """The serial part."""
    @property
    def creation(self) -> int:
        """The node's incarnation."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class ErlangRef:
    """An Erlang reference (``make_ref()``), kept so that it can be sent back."""

    def __new__(cls, node: str, ids: list[int], creation: int) -> ErlangRef:
        """``ids``: 1 to 5 numbers, else ``ValueError``."""
    @property
    def node(self) -> str:
        """The node that made it."""
    @property
    def ids(self) -> list[int]:
        """Its numbers."""
    @property
    def creation(self) -> int:
        """The node's incarnation."""
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

def erlang_encode(obj: object) -> bytes:
    """``term_to_binary``: the external term format of ``obj`` (version byte 131 first).

    ``None`` is ``[]``, ``bool`` the atoms ``true``/``false``, ``int`` an integer, ``float`` a
    float (finite, else ``ValueError``), ``str`` an atom (255 characters at most, else
    ``ValueError``), ``bytes``/``bytearray`` a binary, ``tuple``/``list``/``dict`` a tuple, a
    list, a map, ``ErlangPid``/``ErlangRef`` themselves; anything else raises ``TypeError``.
    """

def erlang_decode(data: bytes) -> Any:
    """``binary_to_term``: atoms become ``str``, binaries and strings (lists of bytes)
    ``bytes``, the rest as ``erlang_encode`` maps it back. A port, a fun, a bitstring or an
    improper list, or bytes that are not one whole term, raise ``ValueError`` naming it."""

@final
class ErlangNode:
    """A hidden Erlang node in this process (uWSGI's C-node): registered with the EPMD on
    ``127.0.0.1:epmd_port``, listening on the address the host part of ``name`` resolves to, it
    accepts the nodes whose handshake proves ``cookie`` and connects to others on demand. Its
    threads only read the network: create it in a process that will not fork.

    Raises ``ValueError`` for a bad name, ``ConnectionError`` when EPMD cannot be reached or
    refuses the name (one already registered).
    """

    def __new__(cls, name: str, cookie: str, epmd_port: int = 4369) -> ErlangNode: ...
    @property
    def name(self) -> str:
        """The full node name, ``name@host``."""
    @property
    def port(self) -> int:
        """The port it listens on (registered with EPMD)."""
    @property
    def creation(self) -> int:
        """The incarnation number EPMD gave it."""
    def recv(self, timeout: float | None = None) -> tuple[str, str, Any, Any, Any] | None:
        """The next event, or None after ``timeout`` seconds (None: no limit); the GIL is released.

        ``(kind, peer, to, sender, payload)``: ``message`` (``to``: a registered name, an
        ``ErlangPid`` or an ``ErlangRef`` alias; ``sender``: an ``ErlangPid`` or None; ``payload``:
        the decoded message), ``bad_message`` (``payload``: why it could not be decoded),
        ``connected``, ``refused`` (a failed handshake, a wrong cookie; ``payload``: why) and
        ``closed`` (``payload``: why).
        """
    def send(self, to: ErlangPid, message: object) -> None:
        """Send ``message`` to the process ``to``, connecting to its node if needed
        (``ConnectionError`` when that fails)."""
    def reg_send(self, node: str, name: str, message: object) -> None:
        """``{Name, Node} ! Message``, connecting to ``node`` if needed."""
    def close(self) -> None:
        """Unregister from EPMD and close every connection."""

# ---------------------------------------------------------------- RPC (uwsgi protocol, modifier1 173)

def rpc_listen(address: str, backlog: int) -> int:
    """Bind a listening socket at ``address`` (``HOST:PORT``, ``:PORT`` for every interface, or a
    Unix socket path: anything without a colon) with ``backlog`` pending connections at most.

    A Unix socket left at the path is replaced; any other kind of file there is an error.
    Returns the fd; the caller owns it (``socket.socket(fileno=fd)``).

    Raises:
        OSError: the address cannot be bound (in use, no permission...).
    """

def rpc_call(address: str, name: bytes, args: list[bytes], timeout: float) -> bytes | None:
    """Call ``name(*args)`` at ``address`` (``HOST:PORT`` or a Unix socket path) as uWSGI's client
    does: connect, send one request, read one reply; the GIL is released, Ctrl-C ends the call.

    Returns the value, or None when the server closed without an answer (unknown function, no
    result, the function raised).

    Raises:
        ValueError: the call breaks uWSGI's limits (name 1-255 bytes, 255 arguments, empty
            arguments, name and arguments over 65535 bytes in all).
        OSError: no answer within ``timeout`` seconds (``TimeoutError``), refused
            (``ConnectionRefusedError``), a missing Unix socket (``FileNotFoundError``), or a
            reply that breaks the protocol (errno ``EPROTO``).
    """

@final
class RpcServer:
    """One worker's RPC server over listening sockets the master bound before the fork; it
    reads requests from many connections at once without blocking and answers them one by one.

    Args:
        fds: the listening sockets (duplicated: the caller keeps its own).
        max_connections: connections read, run or written at once; past it the listeners are
            not watched and further clients wait in the kernel's backlog.
        read_timeout: seconds a client has to send its whole request, and again to take the
            reply; then the connection is closed.
    """

    def __new__(cls, fds: list[int], max_connections: int = 64, read_timeout: float = 4.0) -> RpcServer: ...
    def serve(
        self,
        dispatch: Callable[[bytes, tuple[bytes, ...]], object],
        log: Callable[[str], object],
        wake_fds: list[int],
        timeout: float | None = None,
    ) -> bool:
        """Serve calls until one of ``wake_fds`` is readable (True) or ``timeout`` seconds pass
        (False; None: no limit). Accepting, reading and writing happen without the GIL; each
        complete request calls ``dispatch(name, args)``, whose non-empty bytes are the reply
        (anything else: the connection is closed without one, as uWSGI does). Packets that are
        not RPC requests are closed and counted; ``log(line)`` gets a report at most every 10 s.
        Ctrl-C (a signal whose handler raises) ends the wait. One thread at a time.
        """
    def open_connections(self) -> int:
        """Connections open now (being read, run or written)."""
