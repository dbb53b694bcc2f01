"""The runtime's log lines, without ``logging`` in a process that does not use it.

``import logging`` costs every process ~1.3 MiB (it loads traceback, linecache, tokenize,
string, weakref...), which the master's children share. So the runtime's named loggers
(:func:`get_logger`) write their lines themselves, as the command line's root handler would
(the message alone, after ``<date> - `` with ``--log-date``), until the process has ``logging``
loaded (the application, a test, a library imported it): from then on each line goes through
``logging.getLogger(name)``, so the application's logging configuration and tools that capture
records (pytest's ``caplog``) see every one.

In a process that the command line set up (:func:`setup`: the master and its children), the
first line that goes through ``logging`` installs the handler the command line would have
(stderr, ``--log-date``'s format, the root logger at INFO) if the root logger has none yet, so
no line is lost. Elsewhere (a program that only enqueues) the lines are those of an
unconfigured ``logging``: warnings and errors to stderr, INFO and below dropped.
"""

from __future__ import annotations

import os
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec
    from types import ModuleType, TracebackType

    _ExcInfo = bool | BaseException | tuple[type[BaseException], BaseException, TracebackType | None] | None

__all__ = ['DEBUG', 'ERROR', 'INFO', 'WARNING', 'Logger', 'flush', 'get_logger', 'setup']

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40

_configured = False  # setup() ran: this is the master (or a child of it) that the command line started
_date_format: str | None = None  # --log-date: '' = ctime's format, else a strftime format
_adopted = False  # `logging` was set up for our lines (once per process)
_lock = threading.Lock()  # one line at a time on stderr
_loggers: dict[str, Logger] = {}
_CTIME = '%a %b %e %H:%M:%S %Y'  # time.ctime's format (uWSGI's log date)


def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_new_lock)


def setup(date_format: str | None = None) -> None:
    """The command line's logging: INFO and above to stderr, each line after ``<date> - `` when
    ``date_format`` is given (``''``: ``time.ctime``'s format)."""
    global _configured, _date_format
    _configured = True
    _date_format = date_format
    if 'logging' in sys.modules:
        _adopt(again=True)
    elif not any(isinstance(f, _WhenLoggingLoads) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenLoggingLoads())


class _WhenLoggingLoads:
    """An import hook that sets ``logging`` up the moment it is imported (by the application, a
    library, the core), so that even the lines logged before any of ours (an application's at
    import) find the handler the command line gives."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if name != 'logging':
            return None
        sys.meta_path.remove(self)
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec(name)
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, 'exec_module'):
            return None  # imported the usual way; set up at our next line
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            _adopt()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _stamp(when: float) -> str:
    return time.strftime(_date_format or _CTIME, time.localtime(when))


def _adopt(again: bool = False) -> None:
    """Our lines go through ``logging`` from now on: in a process set up by the command line,
    give the root logger the handler it would have had (if it has none) and let INFO through."""
    global _adopted
    if _adopted and not again:
        return
    _adopted = True
    if not _configured:
        return
    import logging  # loaded already

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))  # its format is the message alone
    if _date_format is not None:
        for handler in root.handlers:
            handler.setFormatter(logging.Formatter('%(asctime)s - %(message)s', _date_format or _CTIME))
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)


class Logger:
    """A named logger with the calls the runtime makes (``logging.Logger``'s signatures)."""

    __slots__ = ('name',)

    def __init__(self, name: str) -> None:
        self.name = name

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        if 'logging' in sys.modules:
            import logging

            _adopt()
            return logging.getLogger(self.name).isEnabledFor(level)
        return level >= (INFO if _configured else WARNING)

    def _emit(self, level: int, msg: str, args: tuple[object, ...], exc_info: _ExcInfo) -> None:
        if 'logging' in sys.modules:
            import logging

            _adopt()
            # stacklevel: the record names the runtime's caller, not this module
            logging.getLogger(self.name).log(level, msg, *args, exc_info=exc_info, stacklevel=3)
            return
        if level < (INFO if _configured else WARNING):
            return
        text = msg % args if args else msg
        if exc_info:
            text += '\n' + _format_exception(exc_info)
        if _date_format is not None and _configured:
            text = f'{_stamp(time.time())} - {text}'
        with _lock:
            sys.stderr.write(text + '\n')
            sys.stderr.flush()

    def log(self, level: int, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        self._emit(level, msg, args, exc_info)

    def debug(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        self._emit(DEBUG, msg, args, exc_info)

    def info(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        self._emit(INFO, msg, args, exc_info)

    def warning(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        self._emit(WARNING, msg, args, exc_info)

    def error(self, msg: str, *args: object, exc_info: _ExcInfo = None) -> None:
        self._emit(ERROR, msg, args, exc_info)

    def exception(self, msg: str, *args: object, exc_info: _ExcInfo = True) -> None:
        self._emit(ERROR, msg, args, exc_info)


def _format_exception(exc_info: _ExcInfo) -> str:
    import traceback  # only when an exception is logged

    if isinstance(exc_info, BaseException):
        exc: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        exc = exc_info[1]
    else:
        exc = sys.exc_info()[1]
    if exc is None:
        return 'NoneType: None'  # as logging writes it
    return ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip('\n')


def get_logger(name: str) -> Logger:
    logger = _loggers.get(name)
    if logger is None:
        logger = _loggers[name] = Logger(name)
    return logger


def flush() -> None:
    """Before an ``exec``: what ``logging``'s handlers (if loaded) and stderr hold goes out."""
    logging = sys.modules.get('logging')
    if logging is not None:
        for handler in logging.getLogger().handlers:
            handler.flush()
    sys.stderr.flush()


def format_exception(exc: BaseException | None) -> str:
    """``exc`` with its traceback, as ``traceback.format_exc()`` prints the exception being
    handled, without the trailing newline; traceback (with linecache and tokenize) is imported
    only when an exception is formatted."""
    import traceback

    return ''.join(traceback.format_exception(exc)).rstrip()


def format_exc() -> str:
    """``format_exception`` of the exception being handled."""
    return format_exception(sys.exc_info()[1])
