"""Must pass mypy --strict: uWSGI-style code and our documented extras."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import uwsgi
import uwsgidecorators
from uwsgidecorators import cron, filemon, harakiri, postfork, rbtimer, signal, spool, spoolforever, spoolraw, thread, timer

uwsgidecorators.configure(spooler='/tmp/spool')  # ours


@spool
def send_email(arguments: dict[str, Any]) -> None:
    pass


@spool(pass_arguments=True)
def resize(path: str, width: int, quality: int = 85) -> None:
    pass


@spoolforever
def poll(arguments: dict[str, Any]) -> None:
    pass


@spoolraw
def raw(arguments: dict[str, Any]) -> int:
    return uwsgi.SPOOL_OK


path1: bytes = send_email.spool({'to': 'a@example.com'})
path2: bytes = resize.spool('a.png', 100, quality=90)
path3: bytes = send_email({'to': 'b@example.com'})


@timer(3)
def heartbeat(signum: int) -> None:
    pass


@timer(0.2, target='spooler')  # ours: fractions
def fast(signum: int) -> None:
    pass


@rbtimer(5, signum=40)
def rb(signum: int) -> None:
    pass


@cron(40, 2, -1, -1, -1)
def nightly(signum: int) -> None:
    pass


@cron('*/5 9-17 * * mon-fri', tz='Europe/Paris', catch_up=True)  # ours: crontab strings, tz=
def office_hours(signum: int) -> None:
    pass


@filemon('/etc/hosts')
def changed(signum: int) -> None:
    pass


@filemon(Path('/etc'), recursive=True)  # ours
def tree_changed(signum: int) -> None:
    pass


@signal(17)
def seventeen(signum: int) -> None:
    pass


@postfork
def after_fork() -> None:
    pass


@postfork(2)
def in_worker_two() -> None:
    pass


@thread
def background(n: int) -> None:
    pass


@harakiri(30)
def slow(n: int) -> int:
    return n


background(1)
x: int = slow(2)
heartbeat(0)  # still the function

uwsgi.signal(17)
uwsgi.register_signal(18, 'workers', heartbeat)
uwsgi.add_timer(18, 0.5)  # ours: fractions
uwsgi.add_rb_timer(18, 2, 3)
ok: bool = uwsgi.add_cron(18, 0, 0, -1, -1, -1)
uwsgi.add_cron(18, '@daily', tz='UTC')  # ours
uwsgi.add_file_monitor(18, '/etc/hosts')
registered = uwsgi.signal_registered(18)
if registered:
    print('18 is registered')


def waiter() -> None:
    empty: bytes = uwsgi.signal_wait(17)
    print(empty, uwsgi.signal_received())


threading.Thread(target=waiter).start()
uwsgi.spool({b'a': b'b'})
uwsgi.spool(spooler=b'/tmp/spool', body=b'x')
print(uwsgi.masterpid(), uwsgi.worker_id(), uwsgi.i_am_the_spooler(), uwsgi.spooler_pids(), uwsgi.opt, uwsgi.numproc)
print(uwsgi.version, uwsgi.version_info[4], uwsgi.hostname, uwsgi.spoolers, uwsgi.spooler_jobs())
uwsgi.set_user_harakiri(5)
uwsgi.set_spooler_frequency(3)
