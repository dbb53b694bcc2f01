"""kill -9 of a writer in the middle of enqueues leaves no partial task that a reader would run.

A writer process enqueues tasks through our `uwsgi` shim in a loop and is SIGKILLed at random
moments, several times. Two sizes, for the writer's two ways: 4 MiB bodies (an unnamed file
linked into place; most of the writer's time is spent inside the write) and 100-byte bodies
(written in place with one `write`, as uWSGI does). Afterwards:
* every file a reader would consider (`uwsgi_spoolfile_on_*`, top level and numeric priority
  dirs) is complete: it parses, and its body has the declared length and ends with its id. The
  one exception is an EMPTY file (a small-task writer killed between its create and its write),
  which no reader runs: both take a file shorter than a header for one still being written;
* a spooler drains the directory and its function sees only complete bodies, and every enqueue
  that returned (logged by the writer after `uwsgi.spool` returned) runs.
The reader is our master and, separately, the real uWSGI (which trusts any file under the
task prefix once it can lock it).
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from interop import procs as P
from interop import spoolfmt

HERE = Path(__file__).resolve().parent / 'interop'
BIG = 4 * 1024 * 1024
SMALL = 100
KILLS = 6


def _kill_writers(procs, spool_dir: Path, work_dir: Path, body: int, rnd: random.Random) -> None:
    for k in range(KILLS):
        w = procs.python(
            [HERE / 'flood_writer.py', work_dir, body],
            env={'UWSGIDECORATORS_SPOOLERS': spool_dir},
            name=f'writer-{k}',
        )
        before = len(P.read_lines(work_dir / 'written'))
        P.wait_until(
            lambda before=before: len(P.read_lines(work_dir / 'written')) > before, 30, 'the writer to enqueue', [w]
        )
        time.sleep(rnd.uniform(0.0, 0.05))
        os.kill(w.pid, signal.SIGKILL)
        w.wait(10)
        w.stop()


def _complete(path: str) -> str | None:
    """None if the file is a complete task, else why not."""
    with open(path, 'rb') as f:
        data = f.read()
    try:
        vars_, body = spoolfmt.decode(data)
    except ValueError as e:
        return str(e)
    d = dict(vars_)
    if len(body) != int(d.get(b'len', b'-1')):
        return f'body {len(body)} bytes, declared {d.get(b"len")}'
    if not body.endswith(d.get(b'id', b'\0')):
        return 'body tail is not its id'
    return None


@pytest.mark.parametrize('body', [BIG, SMALL], ids=['big', 'small'])
@pytest.mark.parametrize('reader', ['ours', 'uwsgi'])
def test_killed_writer_leaves_no_runnable_partial_task(procs, spool_dir, work_dir, reader, body, uwsgi_bin):
    _kill_writers(procs, spool_dir, work_dir, body, random.Random(f'{reader}{body}'))
    written = set(P.read_lines(work_dir / 'written'))
    named = spoolfmt.runnable_files(str(spool_dir))
    empty = [f for f in named if os.path.getsize(f) == 0]
    files = [f for f in named if f not in empty]
    partial = {f: why for f in files if (why := _complete(f))}
    assert not partial, f'partial tasks under a runnable name: {partial}'
    others = [n for n in os.listdir(spool_dir) if not n.startswith('uwsgi_spoolfile_on_')]
    print(
        f'{len(written)} tasks written, {len(files)} runnable files, {len(empty)} empty ones, '
        f"{len(others)} other entries (a killed writer's temp files): {others[:3]}"
    )
    if body == BIG:
        assert not empty, f'an unnamed-file writer left empty files: {empty[:3]}'

    args = ['--spooler', spool_dir, '--spooler-import', HERE / 'check_spooler.py', '--spooler-frequency', '1']
    env = {'CHECK_DIR': work_dir}
    r = procs.master(args, env=env) if reader == 'ours' else procs.uwsgi(args, env=env)
    P.wait_until(
        lambda: (
            set(spoolfmt.runnable_files(str(spool_dir))) <= set(empty)
            and len(P.read_lines(work_dir / 'checked')) >= len(files)
        ),
        60,
        f'the {reader} spooler to drain the directory',
        [r],
    )
    r.stop()
    checked = P.read_lines(work_dir / 'checked')
    bad = [line for line in checked if line.startswith('BAD')]
    assert not bad, bad
    ran = {line.split()[1] for line in checked}
    assert written <= ran, f'acknowledged enqueues that never ran: {sorted(written - ran)[:5]}'
