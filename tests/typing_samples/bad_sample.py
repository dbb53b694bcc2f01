"""Each line marked E: must be reported by mypy --strict (the line number is checked)."""

from __future__ import annotations

from typing import Any

import uwsgi
from uwsgidecorators import cron, signal, spool, timer


@spool
def send_email(arguments: dict[str, Any]) -> None:
    pass


@spool(pass_arguments=True)
def resize(path: str, width: int) -> None:
    pass


send_email.spool(123)  # E: not a dict
resize.spool('a.png', 'wide')  # E: width is an int
uwsgi.signal('seventeen')  # E: a signal number is an int
uwsgi.register_signal(1, 'workers', lambda: None)  # E: a handler takes the signal number
uwsgi.add_cron(1, 0, 0, -1, -1, -1, 5)  # E: six fields
timer('3')  # E: seconds are a number
signal(3, target=5)  # E: a target is a str
cron(40, 2, -1, -1, -1, signum='x')  # E: signum is an int
x: int = uwsgi.signal_wait()  # E: returns b''
