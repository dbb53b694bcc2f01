"""Task modules written by a test and run under our master: the common header whose `rec()` each
handler calls to append one JSON record, and the helpers to start the master on such a module
and read the records back."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from interop.procs import read_jsonl, wait_until

HEADER = textwrap.dedent(
    """
    import json, os, time
    import uwsgi
    from uwsgidecorators import cron, filemon, harakiri, postfork, rbtimer, signal, spool, timer

    OUT = os.environ['SIG_OUT']
    MARK = OUT + '.mark'
    WATCHED = os.environ.get('WATCHED', '')

    def rec(event, **extra):
        extra.update(event=event, pid=os.getpid(), worker=uwsgi.worker_id(),
                     spooler=bool(uwsgi.i_am_the_spooler()), t=time.monotonic())
        fd = os.open(OUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(extra) + '\\n').encode())
        finally:
            os.close(fd)
    """
)

CONTROL = re.compile(r'signal control socket: (\S+)')


def write_module(tmp_path: Path, body: str, name: str = 'sigtasks') -> Path:
    path = tmp_path / f'{name}.py'
    path.write_text(HEADER + textwrap.dedent(body))
    return path


def start(procs, tmp_path, body, *args, workers=2, spooler=False, env=None, name='sigtasks'):
    """Our master on a module made of HEADER + `body`; returns (master, records file)."""
    out = tmp_path / 'out.jsonl'
    argv = ['--import', write_module(tmp_path, body, name), '--processes', str(workers), *args]
    if spooler:
        argv += ['--spooler', tmp_path / 'spool', '--spooler-frequency', '1']
    m = procs.master(argv, env={'SIG_OUT': out, **(env or {})})
    return m, out


def events(out, event):
    return [r for r in read_jsonl(out) if r['event'] == event]


def control(m) -> str:
    """The master's control socket, from its log."""
    return wait_until(lambda: CONTROL.search(m.log()), 20, 'the control socket in the log', [m]).group(1)


def workers_up(m, n) -> None:
    wait_until(lambda: all(f'spawned uWSGI worker {i} ' in m.log() for i in range(1, n + 1)), 20, 'workers', [m])
