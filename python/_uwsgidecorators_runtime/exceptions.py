"""Exception tree of uwsgidecorators (public as ``uwsgidecorators.exceptions``).

Every error we raise on purpose derives from :class:`UwsgiError`. The spool errors also derive
from the builtin a uWSGI user would catch for the same fault (``ValueError`` for a bad job,
``RuntimeError`` for a missing spooler), so code written against real uWSGI keeps working.

The Rust extension (``_uwsgidecorators_runtime._core``) imports :class:`SpoolPacketError` and
:class:`SpoolTooLargeError` (and :class:`MuleQueueFullError`) from this module by name: keep the names stable.
"""

from __future__ import annotations

__all__ = [
    'FileMonitorPathError',
    'MasterNotFoundError',
    'MuleQueueFullError',
    'NoMasterWarning',
    'NotBuiltError',
    'SpoolArgumentsError',
    'SpoolDirectoryError',
    'SpoolError',
    'SpoolPacketError',
    'SpoolTooLargeError',
    'SpoolerNotConfiguredError',
    'UwsgiError',
]


class UwsgiError(Exception):
    """Base class of every error raised by uwsgidecorators itself."""


class SpoolError(UwsgiError):
    """A spool job could not be written or read."""


class SpoolArgumentsError(SpoolError, TypeError, ValueError):
    """``f.spool(x)`` of a function decorated without ``pass_arguments=True`` got something other
    than a dict (or a sequence of pairs) as the task.

    A ``TypeError`` and, as uWSGI's own ``dict.update`` error was for a string, a ``ValueError``.
    """


class SpoolDirectoryError(SpoolError, OSError):
    """A configured spool directory cannot be used by this process: missing (an attached process
    never creates one), not a directory, not writable, or writable by other users. The message
    names the path and the fix; ``errno`` and ``filename`` are set as for the ``OSError``."""


class SpoolPacketError(SpoolError, ValueError):
    """A spool file is not a valid uwsgi packet (bad header, truncated or zero-length key...)."""


class SpoolTooLargeError(SpoolError, ValueError):
    """The vars block (or one key/value) of a job is over uWSGI's 65535-byte limit.

    uWSGI refuses a vars block over 64 KiB and silently truncates a single value over 64 KiB;
    we refuse both. Big payloads belong in the ``body`` (``uwsgi.spool({b'body': ...})``, or a
    ``'body'`` item of a ``@spool`` task, which the function receives), which has no size limit.
    A ``pass_arguments=True`` function never receives the body: pass it a reference instead.
    """


class SpoolerNotConfiguredError(SpoolError, RuntimeError):
    """``uwsgi.spool`` was called in a process that knows no spooler directory."""


class MasterNotFoundError(UwsgiError, RuntimeError):
    """``uwsgi.signal`` was called in a process that cannot reach a uwsgidecorators master.

    The master's children, and any process started with ``UWSGIDECORATORS_CONTROL`` in its
    environment (the master sets it), send signals to the master's control socket.
    """


class MuleQueueFullError(UwsgiError, RuntimeError):
    """A mule message could not be queued: its queue (the mule's, the farm's or the any-mule
    queue) stayed full for the whole send timeout (``--mule-send-timeout``, 5 s by default),
    because its mules do not keep up or are stopped. uWSGI drops the message without a word
    (``mule_msg`` returns False); nothing was queued, so the caller may retry or report it."""


class FileMonitorPathError(UwsgiError, FileNotFoundError, ValueError):
    """``uwsgi.add_file_monitor`` / ``@filemon`` on a path that does not exist.

    uWSGI accepts the call and then never fires; we refuse it. It is a ``FileNotFoundError`` and,
    for code written against uWSGI's ``ValueError("unable to add file monitor")``, a ``ValueError``.
    """


class NotBuiltError(UwsgiError, NotImplementedError):
    """A decorator of uWSGI's module whose subsystem this package does not provide yet (``@rpc``,
    the mule and farm decorators): raised where it is applied, outside real uWSGI (inside real
    uWSGI the builtin module does the work). See docs/compat.md."""


class NoMasterWarning(RuntimeWarning):
    """A signal handler, timer, cron entry or file monitor was set up in a process that has no
    uwsgidecorators master to run it (a web server importing a task module, a shell, a test).

    Issued once per function and process. Silence it where that is expected::

        warnings.filterwarnings('ignore', category=uwsgidecorators.exceptions.NoMasterWarning)
    """


# Their public name: tracebacks, reprs and pickles say `uwsgidecorators.exceptions.X`, as they did
# before the classes moved here (unpickling imports that module, which re-exports these classes).
for _name in __all__:
    globals()[_name].__module__ = 'uwsgidecorators.exceptions'
del _name
