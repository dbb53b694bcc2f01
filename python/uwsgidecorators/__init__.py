"""uWSGI's Python decorators, runnable with or without uWSGI.

Every public name of uWSGI's own ``uwsgidecorators`` module is here with the same signature,
attributes and results (see SPEC 13.1). Everything goes through the ``uwsgi`` module: inside
real uWSGI that is the builtin one, elsewhere it is this distribution's shim (``uwsgi/``).

Differences from the uWSGI module, all deliberate:

* With the shim, importing works without a master and ``@spool`` works without a configured
  spooler: calling ``.spool()`` then raises ``SpoolerNotConfiguredError`` saying how to configure
  one. Under real uWSGI the original checks (master required, ``spooler`` option required) stay.
* :func:`manage_spool_request` hands a value that is not valid UTF-8 (a binary body, say) to the
  task as ``bytes`` instead of raising ``UnicodeDecodeError`` on every run for ever.
* :func:`configure` is new: it points a process that the master did not start at a spool dir.
"""

from __future__ import annotations

import os
import sys
from functools import partial
from threading import Thread

import uwsgi

# The runtime this package shares with the `uwsgi` shim (which imports it, never this package).
from _uwsgidecorators_runtime import config as _config

# Public re-exports (the real module has no __all__, so `import *` takes every public name).
from _uwsgidecorators_runtime.config import configure as configure
from .exceptions import SpoolerNotConfiguredError as SpoolerNotConfiguredError
from .exceptions import SpoolError as SpoolError
from .exceptions import SpoolArgumentsError as SpoolArgumentsError
from .exceptions import SpoolDirectoryError as SpoolDirectoryError
from .exceptions import SpoolPacketError as SpoolPacketError
from .exceptions import SpoolTooLargeError as SpoolTooLargeError
from .exceptions import NotBuiltError as NotBuiltError
from .exceptions import UwsgiError as UwsgiError

# Type checkers see `typing`; at run time its few objects used here come from a stand-in
# (importing typing costs every process ~1 MiB).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import typing as _typing
else:
    from _uwsgidecorators_runtime import _lite_typing as _typing

# The shim marks itself; the builtin module of a real uWSGI process has no such attribute.
_REAL_UWSGI: bool = not getattr(uwsgi, '__uwsgidecorators_shim__', False)

if _REAL_UWSGI and uwsgi.masterpid() == 0:
    raise Exception('you have to enable the uWSGI master process to use this module')



_P = _typing.ParamSpec('_P')
_P2 = _typing.ParamSpec('_P2')
_R = _typing.TypeVar('_R')
#: what a spool function returns (@spoolraw: the spooler's answer; @spool, @spoolforever: ignored)
_SR = _typing.TypeVar('_SR', bound='int | None')
_SignalHandlerT = _typing.TypeVar('_SignalHandlerT', bound='_typing.Callable[[int], _typing.Any]')
_RPCHandlerT = _typing.TypeVar('_RPCHandlerT', bound='_typing.Callable[..., bytes | None]')


class _FreeSignal(int):
    """The default ``signum=`` of @timer & co: "the lowest free signal" (an int for type checkers)."""

    __slots__ = ()


_FREE_SIGNAL = _FreeSignal(-1)

#: ``ud_spool_func`` name -> function; the key is the bare ``__name__``, so a later function
#: with the same name replaces an earlier one (as in uWSGI)
spooler_functions: 'dict[str, _typing.Callable[..., _typing.Any]]' = {}
#: ``@mulefunc`` registry, by bare ``__name__``
mule_functions: 'dict[str, _typing.Callable[..., _typing.Any]]' = {}
#: callables run, in order, after every fork of a worker, spooler or mule
postfork_chain: 'list[_typing.Callable[[], _typing.Any]]' = []


# --------------------------------------------------------------------------------------------
# str <-> bytes at the spooler boundary (uWSGI's Python 3 plugin only takes and gives bytes)


def _encode1(val: _typing.Any) -> _typing.Any:
    """str -> UTF-8 bytes; anything else unchanged."""
    return val.encode('utf-8') if isinstance(val, str) else val


def _decode1(val: _typing.Any) -> _typing.Any:
    """bytes -> str (UTF-8, strict); anything else unchanged."""
    return val.decode('utf-8') if isinstance(val, bytes) else val


def _encode_to_spooler(vars: 'dict[_typing.Any, _typing.Any]') -> 'dict[_typing.Any, _typing.Any]':
    return {_encode1(key): _encode1(value) for key, value in list(vars.items())}


def _decode_from_spooler(vars: 'dict[_typing.Any, _typing.Any]') -> 'dict[_typing.Any, _typing.Any]':
    return {_decode1(key): _decode1(value) for key, value in list(vars.items())}


def _decode_or_keep(val: _typing.Any) -> _typing.Any:
    # Our divergence: uWSGI's module raises UnicodeDecodeError here, and the task is retried for
    # ever without a chance to run. Undecodable bytes are handed over as bytes instead.
    if isinstance(val, bytes):
        try:
            return val.decode('utf-8')
        except UnicodeDecodeError:
            return val
    return val


# --------------------------------------------------------------------------------------------
# signals


def get_free_signal() -> int:
    """Lowest uWSGI signal number (0..255) with no handler in this process."""
    for signum in range(256):
        if not uwsgi.signal_registered(signum):
            return signum
    raise Exception('No free uwsgi signal available')


# --------------------------------------------------------------------------------------------
# spooler


def manage_spool_request(vars: 'dict[_typing.Any, bytes]') -> int:
    """The ``uwsgi.spooler`` callable installed at import: dispatch a job to its function."""
    # Keys first: the plugin gives bytes keys (plus the str keys 'spooler_task_name'/'body').
    # Building a fresh dict in order keeps the "last one wins" outcome of key collisions.
    job: dict[_typing.Any, _typing.Any] = {_decode_or_keep(key): value for key, value in list(vars.items())}
    if 'args' in job:
        # pop + re-insert moves both to the end, where uWSGI's module leaves them too
        import pickle  # only for pass_arguments jobs: a process that never sees one never loads it

        job['args'] = pickle.loads(job.pop('args'))
        job['kwargs'] = pickle.loads(job.pop('kwargs'))
    job = {key: _decode_or_keep(value) for key, value in list(job.items())}

    name = job['ud_spool_func']
    try:
        func = spooler_functions[name]
    except KeyError:
        raise KeyError(
            f'{name!r}: no spool function of this name is registered in this process '
            '(import the module that defines it with --import or --spooler-import)'
        ) from None

    if 'args' in job:
        result = func(*job['args'], **job['kwargs'])
    else:
        result = func(job)
    # @spool / @spoolforever stored their fixed answer in the job; @spoolraw answers itself.
    answer = job.get('ud_spool_ret', result)
    try:
        return int(answer)
    except (TypeError, ValueError):
        # Raising keeps uWSGI's outcome (the task is retried); the message says why.
        raise TypeError(
            f'@spoolraw function {name!r} returned {answer!r}: a @spoolraw function must return '
            'an int, uwsgi.SPOOL_OK (-2: done, the task is deleted), uwsgi.SPOOL_RETRY (-1: run '
            'it again) or uwsgi.SPOOL_IGNORE (0); use @spool for a function whose return value '
            'does not matter'
        ) from None


class _spoolraw(_typing.Generic[_P, _SR]):
    """``@spoolraw``: the function's return value (an int) tells the spooler what to do.

    Calling the decorated object (or its ``.spool``) takes the function's own arguments and
    returns the path of the spool file (bytes)."""

    def __init__(self, f: '_typing.Callable[_P, _SR]', pass_arguments: bool) -> None:
        if _REAL_UWSGI and 'spooler' not in uwsgi.opt:
            raise Exception(f'you have to enable the uWSGI spooler to use @{type(self).__name__} decorator')
        self.f = f
        spooler_functions[f.__name__] = f
        # The pre-1.9.13 calling style `function.spool(...)` still works.
        f.spool = self.__call__  # type: ignore[attr-defined]
        self.pass_arguments = pass_arguments
        self.base_dict: dict[str, _typing.Any] = {'ud_spool_func': f.__name__}

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> bytes:
        arguments = self.base_dict.copy()
        if self.pass_arguments:
            # These keywords steer the spooler, they are not the function's own arguments.
            for key in ('message_dict', 'spooler', 'priority', 'at', 'body'):
                if key in kwargs:
                    arguments[key] = kwargs.pop(key)
            import pickle

            arguments['args'] = pickle.dumps(args)
            arguments['kwargs'] = pickle.dumps(kwargs)
        else:
            if args:
                try:
                    arguments.update(_typing.cast('dict[str, _typing.Any]', args[0]))  # only the first positional (a dict) counts
                except (TypeError, ValueError):
                    raise SpoolArgumentsError(
                        f'{self.f.__name__}.spool() takes a dict (or keyword arguments) as the '
                        f'task, got {type(args[0]).__name__} {args[0]!r:.60}; to pass any '
                        f'arguments, decorate {self.f.__name__} with '
                        f'@{type(self).__name__.lstrip("_")}(pass_arguments=True)'
                    ) from None
            if kwargs:
                arguments.update(kwargs)
        try:
            return uwsgi.spool(_encode_to_spooler(arguments))
        except SpoolTooLargeError as exc:
            if not self.pass_arguments:
                raise  # its advice (the 'body' key, which the function receives) is right here
            # The body never reaches a pass_arguments function: advise what does work.
            size = len(arguments['args']) + len(arguments['kwargs'])
            raise SpoolTooLargeError(
                f'unable to spool job: the pickled arguments of {self.f.__name__} take {size} bytes, '
                'over the 65535-byte limit of the uwsgi packet. With pass_arguments=True the body '
                f'does not reach the function: pass {self.f.__name__} a reference to the data (a '
                "file path, a database key), or decorate it without pass_arguments and put the big "
                "value in the 'body' key (it receives it as arguments['body'])"
            ) from exc

    def spool(self, *args: _P.args, **kwargs: _P.kwargs) -> bytes:
        """Legacy (uWSGI < 1.9.13) spelling of calling the decorated object."""
        return type(self).__call__(self, *args, **kwargs)


class _spool(_spoolraw[_P, _SR]):
    """``@spool``: the job is done (file deleted) whatever the function returns."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> bytes:
        # Set on every call, before copy(): this is what puts ud_spool_ret second in the file.
        self.base_dict['ud_spool_ret'] = str(uwsgi.SPOOL_OK)
        return _spoolraw.__call__(self, *args, **kwargs)


class _spoolforever(_spoolraw[_P, _SR]):
    """``@spoolforever``: the job runs again on every spooler pass, for ever."""

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> bytes:
        self.base_dict['ud_spool_ret'] = str(uwsgi.SPOOL_RETRY)
        return _spoolraw.__call__(self, *args, **kwargs)


def spool_decorate(
    f: '_typing.Callable[..., _typing.Any] | None' = None,
    pass_arguments: bool = False,
    _class: 'type[_spoolraw[_typing.Any, _typing.Any]]' = _spoolraw,
) -> _typing.Any:
    if not f:
        return partial(_class, pass_arguments=pass_arguments)
    return _class(f, pass_arguments)


@_typing.overload
def spoolraw(f: '_typing.Callable[_P, _SR]', pass_arguments: bool = False) -> '_spoolraw[_P, _SR]': ...
@_typing.overload
def spoolraw(
    f: None = None, pass_arguments: bool = False
) -> '_typing.Callable[[_typing.Callable[_P, _SR]], _spoolraw[_P, _SR]]': ...
def spoolraw(f: '_typing.Callable[..., _typing.Any] | None' = None, pass_arguments: bool = False) -> _typing.Any:
    return spool_decorate(f, pass_arguments)


@_typing.overload
def spool(f: '_typing.Callable[_P, _SR]', pass_arguments: bool = False) -> '_spool[_P, _SR]': ...
@_typing.overload
def spool(f: None = None, pass_arguments: bool = False) -> '_typing.Callable[[_typing.Callable[_P, _SR]], _spool[_P, _SR]]': ...
def spool(f: '_typing.Callable[..., _typing.Any] | None' = None, pass_arguments: bool = False) -> _typing.Any:
    return spool_decorate(f, pass_arguments, _spool)


@_typing.overload
def spoolforever(f: '_typing.Callable[_P, _SR]', pass_arguments: bool = False) -> '_spoolforever[_P, _SR]': ...
@_typing.overload
def spoolforever(
    f: None = None, pass_arguments: bool = False
) -> '_typing.Callable[[_typing.Callable[_P, _SR]], _spoolforever[_P, _SR]]': ...
def spoolforever(f: '_typing.Callable[..., _typing.Any] | None' = None, pass_arguments: bool = False) -> _typing.Any:
    return spool_decorate(f, pass_arguments, _spoolforever)


# --------------------------------------------------------------------------------------------
# post-fork


def postfork_chain_hook() -> None:
    """Installed as ``uwsgi.post_fork_hook``: run every registered post-fork callable in order.

    An exception stops the chain, as in uWSGI.
    """
    for hook in postfork_chain:
        hook()


class postfork(_typing.Generic[_R]):
    """``@postfork`` runs f after every fork; ``@postfork(N)`` only in worker N.

    With ``@postfork(N)`` the decorated name is bound to None (the second call stores the
    function and returns nothing), exactly as in uWSGI.
    """

    @_typing.overload
    def __init__(self: 'postfork[_typing.Any]', f: int) -> None: ...
    @_typing.overload
    def __init__(self, f: '_typing.Callable[[], _R]') -> None: ...
    def __init__(self, f: _typing.Any) -> None:
        if callable(f):
            self.wid = 0
            self.f: _typing.Callable[[], _typing.Any] | None = f
        else:
            self.f = None
            self.wid = f
        postfork_chain.append(self)

    @_typing.overload
    def __call__(self, f: '_typing.Callable[[], _typing.Any]', /) -> None: ...
    @_typing.overload
    def __call__(self) -> '_R | None': ...
    def __call__(self, *args: _typing.Any, **kwargs: _typing.Any) -> _typing.Any:
        if not self.f:
            self.f = args[0]
            return None
        if self.wid > 0 and self.wid != uwsgi.worker_id():
            return None
        return self.f()


# --------------------------------------------------------------------------------------------
# mules and farms: uWSGI's classes, name for name; they call uwsgi.mule_msg & co (the builtin
# module inside real uWSGI, else the shim and our master's mule queues)


# pickle, once a mule message was sent or received (an `import` statement in the call would
# look it up again every call; a process that never sends one never loads it)
_pickle: _typing.Any = None


def _load_pickle() -> _typing.Any:
    global _pickle
    import pickle

    _pickle = pickle
    return pickle


class mulefunc(_typing.Generic[_P]):
    """Run the function in a mule: bare ``@mulefunc`` (any mule) or ``@mulefunc(N|b'farm')``."""

    @_typing.overload
    def __init__(self: 'mulefunc[...]', f: 'int | str | bytes') -> None: ...
    @_typing.overload
    def __init__(self, f: '_typing.Callable[_P, _typing.Any]') -> None: ...
    def __init__(self, f: _typing.Any) -> None:
        if callable(f):
            self.fname: str | None = f.__name__
            self.mule: _typing.Any = 0
            mule_functions[f.__name__] = f
        else:
            self.mule = f
            self.fname = None

    def real_call(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        # Key order is part of the wire format (the pickle bytes).
        message = {'service': 'uwsgi_mulefunc', 'func': self.fname, 'args': args, 'kwargs': kwargs}
        uwsgi.mule_msg((_pickle or _load_pickle()).dumps(message), self.mule)

    @_typing.overload
    def __call__(self, f: '_typing.Callable[_P2, _typing.Any]', /) -> '_typing.Callable[_P2, None]': ...  # type: ignore[overload-overlap]
    @_typing.overload
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    def __call__(self, *args: _typing.Any, **kwargs: _typing.Any) -> _typing.Any:
        if not self.fname:
            target = args[0]
            self.fname = target.__name__
            mule_functions[self.fname] = target
            return self.real_call
        return self.real_call(*args, **kwargs)


def mule_msg_dispatcher(message: bytes) -> _typing.Any:
    """Installed as ``uwsgi.mule_msg_hook``: run a ``@mulefunc`` call received by a mule."""
    msg = (_pickle or _load_pickle()).loads(message)
    if msg['service'] == 'uwsgi_mulefunc':
        return mule_functions[msg['func']](*msg['args'], **msg['kwargs'])
    return None


class rpc:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, f: _RPCHandlerT) -> _RPCHandlerT:
        uwsgi.register_rpc(self.name, f)
        return f


class farm_loop:
    def __init__(self, f: '_typing.Callable[[bytes], _typing.Any]', farm: 'str | None') -> None:
        self.f = f
        self.farm = farm

    def __call__(self) -> None:
        if uwsgi.mule_id() == 0:
            return
        if not uwsgi.in_farm(self.farm):
            return
        while True:
            message = uwsgi.farm_get_msg()
            if message:
                self.f(message)


class farm:
    """``@farm(name)``: every mule of the farm loops on its messages. The name becomes None."""

    def __init__(self, name: 'str | None' = None, **kwargs: _typing.Any) -> None:
        self.name = name

    def __call__(self, f: '_typing.Callable[[bytes], _typing.Any]') -> None:
        postfork_chain.append(farm_loop(f, self.name))


def _die_like_uwsgi() -> None:
    exc_type, exc, tb = sys.exc_info()
    sys.excepthook(exc_type, exc, tb)  # type: ignore[arg-type]
    sys.exit(1)


class mule_brain:
    def __init__(self, f: '_typing.Callable[[], _typing.Any]', num: int) -> None:
        self.f = f
        self.num = num

    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            try:
                self.f()
            except BaseException:
                _die_like_uwsgi()


class mule_brainloop(mule_brain):
    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            while True:
                try:
                    self.f()
                except BaseException:
                    _die_like_uwsgi()


class mule:
    """``@mule(N)``: mule N runs f once after fork. The decorated name becomes None."""

    def __init__(self, num: int) -> None:
        self.num = num

    def __call__(self, f: '_typing.Callable[[], _typing.Any]') -> None:
        postfork_chain.append(mule_brain(f, self.num))


class muleloop(mule):
    """``@muleloop(N)``: mule N calls f for ever. The decorated name becomes None."""

    def __call__(self, f: '_typing.Callable[[], _typing.Any]') -> None:
        postfork_chain.append(mule_brainloop(f, self.num))


class mulemsg_loop:
    def __init__(self, f: '_typing.Callable[[bytes], _typing.Any]', num: int) -> None:
        self.f = f
        self.num = num

    def __call__(self) -> None:
        if uwsgi.mule_id() == self.num:
            while True:
                message = uwsgi.mule_get_msg()
                if message:
                    self.f(message)


class mulemsg:
    """``@mulemsg(N)``: mule N loops on its messages. The decorated name becomes None."""

    def __init__(self, num: int) -> None:
        self.num = num

    def __call__(self, f: '_typing.Callable[[bytes], _typing.Any]') -> None:
        postfork_chain.append(mulemsg_loop(f, self.num))


# --------------------------------------------------------------------------------------------
# signal handlers and their sources
#
# Each decorator registers f for its signal, then adds the source (timer, cron entry, file
# monitor) with uwsgi.*: inside real uWSGI the builtin functions, elsewhere the shim and our
# master. Our extra keywords (cron's tz/catch_up, filemon's recursive) and crontab strings are
# never passed to the builtin module: under real uWSGI a crontab string is translated to its five
# integers when it can be, and an option real uWSGI cannot honour raises or warns.


class signal:
    def __init__(self, num: int, *, target: str = '', **kwargs: _typing.Any) -> None:
        self.num = num
        self.target = target

    def __call__(self, f: _SignalHandlerT) -> _SignalHandlerT:
        uwsgi.register_signal(self.num, self.target, f)
        return f


# timer, cron, rbtimer and filemon pick a free signal even when signum= is given (the default
# argument of dict.get is evaluated first): with all 256 taken they raise. Kept on purpose.


class timer:
    """``@timer(secs)``: f(signum) runs every ``secs`` seconds (fractions allowed here; real uWSGI
    takes whole seconds) where ``target=`` says (default: one idle worker)."""

    def __init__(
        self, secs: float, *, signum: int = _FREE_SIGNAL, target: str = '', **kwargs: _typing.Any
    ) -> None:
        # A period of 0 (or negative) raises here, before anything is registered.
        from _uwsgidecorators_runtime.signals import _seconds

        _seconds(secs, 'rb_timer' if isinstance(self, rbtimer) else 'timer')
        free = get_free_signal()
        self.num = free if signum is _FREE_SIGNAL else signum
        self.secs = secs
        self.target = target

    def __call__(self, f: _SignalHandlerT) -> _SignalHandlerT:
        uwsgi.register_signal(self.num, self.target, f)
        self._add()
        return f

    def _add(self) -> None:
        uwsgi.add_timer(self.num, self.secs)


def _crontab_to_uwsgi(text: str) -> 'tuple[int, int, int, int, int]':
    """The five ``uwsgi.add_cron`` integers that fire exactly when crontab ``text`` does (for
    real uWSGI, which only takes integers); ValueError when its syntax cannot say it."""

    from _uwsgidecorators_runtime import _core

    ints = _core.CronSpec(text).to_uwsgi()
    if ints is None:
        raise ValueError(
            f"crontab {text!r} cannot be expressed with real uWSGI's add_cron (each field must be any, "
            'one value, or every value divisible by N; day and weekday are ORed only when both are values)'
        )
    return ints


class cron:
    """``@cron(minute, hour, day, month, dayweek)`` (uWSGI's integers: -1 any, -N divisible by N),
    or, ours, ``@cron("*/5 * * * *")``. Keywords: ``signum``, ``target``, and ours ``tz`` (an IANA
    zone name) and ``catch_up`` (run a missed minute once, late)."""

    @_typing.overload
    def __init__(
        self,
        minute: int,
        hour: int,
        day: int,
        month: int,
        dayweek: int,
        *,
        signum: int = ...,
        target: str = '',
        tz: 'str | None' = None,
        catch_up: bool = False,
        **kwargs: _typing.Any,
    ) -> None: ...
    @_typing.overload
    def __init__(
        self,
        minute: str,
        *,
        signum: int = ...,
        target: str = '',
        tz: 'str | None' = None,
        catch_up: bool = False,
        **kwargs: _typing.Any,
    ) -> None: ...
    def __init__(
        self,
        minute: 'int | str',
        hour: 'int | None' = None,
        day: 'int | None' = None,
        month: 'int | None' = None,
        dayweek: 'int | None' = None,
        *,
        signum: int = _FREE_SIGNAL,
        target: str = '',
        tz: 'str | None' = None,
        catch_up: bool = False,
        **kwargs: _typing.Any,
    ) -> None:
        if not isinstance(minute, str):
            missing = [
                n for n, v in (('hour', hour), ('day', day), ('month', month), ('dayweek', dayweek)) if v is None
            ]
            if missing:
                raise TypeError(
                    f'cron() missing {len(missing)} required positional argument(s): {", ".join(missing)} '
                    '(or give one crontab string)'
                )
        elif (hour, day, month, dayweek) != (None, None, None, None):
            raise TypeError('cron() takes either one crontab string or five integers')
        if not _REAL_UWSGI or not isinstance(minute, str):
            # A value out of range or a date that never occurs raises here, before anything is
            # registered (real uWSGI would accept it and never fire).
            from _uwsgidecorators_runtime.signals import cron_spec

            cron_spec(minute, hour, day, month, dayweek)
        free = get_free_signal()
        self.num = free if signum is _FREE_SIGNAL else signum
        self.minute = minute
        self.hour = hour
        self.day = day
        self.month = month
        self.dayweek = dayweek
        self.target = target
        self.tz: str | None = tz
        self.catch_up = bool(catch_up)
        if _REAL_UWSGI:
            if self.tz is not None:
                raise ValueError(
                    f'@cron(tz={self.tz!r}) needs the uwsgidecorators master: real uWSGI runs cron entries '
                    'in its own local time only'
                )
            self._fields = _crontab_to_uwsgi(minute) if isinstance(minute, str) else (minute, hour, day, month, dayweek)

    def __call__(self, f: _SignalHandlerT) -> _SignalHandlerT:
        uwsgi.register_signal(self.num, self.target, f)
        # One call for both forms (the overloads of add_cron tell them apart for callers).
        add_cron: _typing.Any = uwsgi.add_cron
        if _REAL_UWSGI:
            if self.catch_up:
                _warn_real('@cron(catch_up=True)', 'real uWSGI skips a missed minute')
            add_cron(self.num, *self._fields)
        else:
            add_cron(
                self.num, self.minute, self.hour, self.day, self.month, self.dayweek, tz=self.tz, catch_up=self.catch_up
            )
        return f


class rbtimer(timer):
    """``@rbtimer(secs)``: as ``@timer``, through ``uwsgi.add_rb_timer``."""

    def _add(self) -> None:
        uwsgi.add_rb_timer(self.num, self.secs)


class filemon:
    """``@filemon(path)``: f(signum) runs when the file or directory changes. Ours: ``recursive=True``
    watches a directory tree; a missing path raises at once."""

    def __init__(
        self,
        fsobj: 'str | os.PathLike[str]',
        *,
        signum: int = _FREE_SIGNAL,
        target: str = '',
        recursive: bool = False,
        **kwargs: _typing.Any,
    ) -> None:
        free = get_free_signal()
        self.num = free if signum is _FREE_SIGNAL else signum
        self.fsobj = fsobj
        self.target = target
        self.recursive = bool(recursive)

    def __call__(self, f: _SignalHandlerT) -> _SignalHandlerT:
        uwsgi.register_signal(self.num, self.target, f)
        if _REAL_UWSGI:
            if self.recursive:
                _warn_real('@filemon(recursive=True)', 'real uWSGI watches the directory itself only')
            uwsgi.add_file_monitor(self.num, self.fsobj)
        else:
            uwsgi.add_file_monitor(self.num, self.fsobj, recursive=self.recursive)
        return f


def _warn_real(what: str, why: str) -> None:
    import warnings

    warnings.warn(f'{what} is ignored inside real uWSGI: {why}', RuntimeWarning, stacklevel=3)


class erlang:
    """Messages sent to ``name`` on the master's Erlang node (``--erlang NAME``) call the
    function (``uwsgi.erlang_register_process``). Gone from uWSGI 2.0: inside real uWSGI
    decorating raises AttributeError, as uWSGI's module does."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, f: '_typing.Callable[..., _typing.Any]') -> '_typing.Callable[..., _typing.Any]':
        uwsgi.erlang_register_process(self.name, f)
        return f


# --------------------------------------------------------------------------------------------
# lock, thread, harakiri


class lock(_typing.Generic[_P, _R]):
    """Run f holding lock 0, shared by every process of the master (and attached processes).
    Inside real uWSGI a spooler may not lock, so there f is NOT called and None is returned; ours
    calls it under the lock in a spooler too."""

    def __init__(self, f: '_typing.Callable[_P, _R]') -> None:
        self.f = f

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> '_R | None':
        if _REAL_UWSGI and uwsgi.i_am_the_spooler():
            return None
        uwsgi.lock()
        try:
            return self.f(*args, **kwargs)
        finally:
            uwsgi.unlock()


class thread(_typing.Generic[_P, _R]):
    """Calling starts f in a daemon thread (positional arguments only) and returns f itself."""

    def __init__(self, f: '_typing.Callable[_P, _R]') -> None:
        self.f = f

    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> '_typing.Callable[_P, _R]':
        if kwargs:  # uWSGI's class takes positional arguments only
            raise TypeError(f'thread.__call__() got an unexpected keyword argument {next(iter(kwargs))!r}')
        worker = Thread(target=self.f, args=args)
        worker.daemon = True
        worker.start()
        return self.f


class harakiri:
    """Arm a user harakiri of ``seconds`` around each call.

    As in uWSGI the deadline is cleared only when f returns normally: after an exception it
    stays armed and the master will kill the process when it passes.
    """

    def __init__(self, seconds: int) -> None:
        self.s = seconds

    def real_call(self, *args: _typing.Any, **kwargs: _typing.Any) -> _typing.Any:
        name_it = getattr(uwsgi, '_name_user_harakiri', None)  # ours: the master's log names f
        if name_it is not None:
            name_it(self.f)
        uwsgi.set_user_harakiri(self.s)
        result = self.f(*args, **kwargs)
        uwsgi.set_user_harakiri(0)
        return result

    def __call__(self, f: '_typing.Callable[_P, _R]') -> '_typing.Callable[_P, _R]':
        self.f: _typing.Callable[..., _typing.Any] = f
        return self.real_call


# --------------------------------------------------------------------------------------------
# import side effects: the hooks uWSGI (or our master) calls

uwsgi.spooler = manage_spool_request
uwsgi.post_fork_hook = postfork_chain_hook
uwsgi.mule_msg_hook = mule_msg_dispatcher


def __getattr__(name: str) -> _typing.Any:
    # The runtime's extension and signal table, under the private names they had in this package,
    # loaded on first use as before (importing the decorators does not load them).
    if name == '_core':
        from _uwsgidecorators_runtime import _core

        return _core
    if name == '_signals':
        from _uwsgidecorators_runtime import signals

        return signals
    raise AttributeError(f"module 'uwsgidecorators' has no attribute {name!r}")
