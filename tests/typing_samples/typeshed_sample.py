"""Written against typeshed's types-uwsgi stubs (the contract): every decorator of
`uwsgidecorators` and every `uwsgi` function the real module uses, with the argument types
typeshed gives them, results used only as typeshed types them. It must pass mypy --strict both
against typeshed's stubs and against our package's py.typed annotations (tests/test_conformance.py).
"""

from __future__ import annotations

from typing import Any, Literal

import uwsgi
from uwsgidecorators import (
    cron,
    farm,
    filemon,
    harakiri,
    lock,
    mule,
    mulefunc,
    mulemsg,
    muleloop,
    postfork,
    rbtimer,
    rpc,
    signal,
    spool,
    spoolforever,
    spoolraw,
    thread,
    timer,
)


@spool
def send_email(arguments: dict[str, Any]) -> None:
    pass


@spool(pass_arguments=True)
def resize(path: str, width: int) -> None:
    pass


@spoolforever
def poll(arguments: dict[str, Any]) -> None:
    pass


@spoolraw
def controlled(arguments: dict[str, Any]) -> Literal[0, -1, -2]:
    if arguments['foo'] == 'bar':
        return uwsgi.SPOOL_OK
    return uwsgi.SPOOL_RETRY


send_email.spool({'to': 'a@example.com'})
resize.spool('a.png', 100)
poll.spool({'n': '1'})
controlled.spool({'foo': 'bar'})  # the docs' keyword form is refused by typeshed (and by us)


@rpc('helloworld')
def ciao_mondo_function(*args: bytes) -> bytes:  # typeshed's _RPCCallable
    return b'Hello World'


@signal(17)
def my_signal(num: int) -> None:
    print('i am signal %d' % num)


@signal(18, target='workers')
def everywhere(num: int) -> None:
    pass


@timer(3)
def three_seconds(num: int) -> None:
    pass


@timer(10, target='spooler')
def in_spooler(num: int) -> None:
    pass


@rbtimer(5, signum=20)
def five(num: int) -> None:
    pass


@cron(59, 3, -1, -1, -1)
def execute_me_at_three_and_fiftynine(num: int) -> None:
    pass


@cron(40, 2, -1, -1, -1, target='spooler')
def nightly(num: int) -> None:
    pass


@filemon('/tmp')
def tmp_has_been_modified(num: int) -> None:
    pass


@postfork
def reconnect() -> None:
    pass


@thread
def background(n: int, name: str) -> None:
    pass


background(1, 'x')


@lock
def dangerous_op(x: int) -> str:
    return 'done %d' % x


dangerous_op(1)  # typeshed: str; ours: str | None (None in a spooler, as the real class returns)


@mulefunc
def offloaded(argument1: int, argument2: str) -> None:
    pass


@mulefunc(3)
def on_three() -> None:
    pass


# @mulefunc('old_mcdonalds_farm'), in the docs, is refused by typeshed (accepted by us).


offloaded(1, 'two')
on_three()


@mule(1)
def mule_one() -> None:
    pass


@muleloop(2)
def mule_two_loop() -> None:
    pass


@mulemsg(1)
def on_message(message: bytes) -> None:
    pass


@farm('old_mcdonalds_farm')
def farm_message(message: bytes) -> None:
    pass


@harakiri(10)
def slow_function(foo: int, bar: str) -> int:
    return foo


limited: int = slow_function(1, 'x')


# The uwsgi functions the real module uses, with typeshed's argument and result types.
def the_api(handler: Any) -> None:
    uwsgi.register_signal(21, '', handler)
    uwsgi.register_signal(22, 'workers', handler)
    registered = uwsgi.signal_registered(21)
    if registered:
        pass
    uwsgi.add_timer(21, 3)
    uwsgi.add_rb_timer(22, 5)
    uwsgi.add_rb_timer(22, 5, 10)
    cron_ok: Literal[True] = uwsgi.add_cron(23, 59, 3, -1, -1, -1)
    uwsgi.add_file_monitor(24, '/tmp')
    uwsgi.set_user_harakiri(30)
    uwsgi.set_user_harakiri(0)
    rpc_ok: Literal[True] = uwsgi.register_rpc('hello', ciao_mondo_function)
    pid: int = uwsgi.masterpid()
    wid: int = uwsgi.worker_id()
    mid: int = uwsgi.mule_id()
    spooler = uwsgi.i_am_the_spooler()
    if spooler:
        pass
    if uwsgi.in_farm('old_mcdonalds_farm'):
        pass
    sent: bool = uwsgi.mule_msg(b'message')
    sent = uwsgi.mule_msg('message', 1)
    sent = uwsgi.mule_msg(b'message', 'old_mcdonalds_farm')
    farm_msg: bytes | None = uwsgi.farm_get_msg()
    path = uwsgi.spool({b'name': b'value'})
    option = uwsgi.opt.get('spooler')
    ok: int = uwsgi.SPOOL_OK
    retry: int = uwsgi.SPOOL_RETRY
    uwsgi.lock()
    uwsgi.unlock()
    print(cron_ok, rpc_ok, pid, wid, mid, sent, farm_msg, path, option, ok, retry)


def mule_side() -> None:
    message = uwsgi.mule_get_msg()
    if message:
        pass
    message = uwsgi.mule_get_msg(signals=False, farms=True, buffer_size=65536, timeout=-1)
