"""Fault injection on the spooler side, with real processes (our master and its spoolers).

* kill -9 of a spooler in the middle of a task: the master respawns it, the task runs again to
  completion, the tasks queued behind it run too, nothing is lost;
* two spooler processes on one directory (`--spooler-processes 2`) and 3000 tasks: each task
  runs exactly once, and both processes take part;
* a task enqueued while no spooler runs is executed once the master starts.
"""

from __future__ import annotations

import glob
import os
import signal
from collections import Counter
from pathlib import Path

from interop import procs as P
from interop import spoolfmt

HERE = Path(__file__).resolve().parent / 'interop'
FAULT = HERE / 'fault_spooler.py'
REC = HERE / 'record_spooler.py'


def _events(work: Path) -> list[tuple[str, str, int]]:
    return [(a, b, int(c)) for a, b, c in (line.split() for line in P.read_lines(work / 'events'))]


def test_spooler_killed_mid_task_is_respawned_and_the_task_runs_again(procs, spool_dir, work_dir):
    from uwsgidecorators import _core

    _core.spool_write(str(spool_dir), [(b'id', b'blocker'), (b'block', b'1')])
    m = procs.master(
        ['--spooler', spool_dir, '--spooler-import', FAULT, '--spooler-frequency', '1'],
        env={'FAULT_DIR': work_dir},
    )
    first = P.wait_until(
        lambda: [e for e in _events(work_dir) if e[:2] == ('start', 'blocker')], 30, 'the blocking task to start', [m]
    )
    pid1 = first[0][2]
    assert pid1 in m.children(), f'task ran in pid {pid1}, not a child of the master {m.pid}'
    # more work queued behind the blocked task
    for i in range(5):
        _core.spool_write(str(spool_dir), [(b'id', b'after-%d' % i)])

    os.kill(pid1, signal.SIGKILL)
    second = P.wait_until(
        lambda: [e for e in _events(work_dir) if e[:2] == ('start', 'blocker') and e[2] != pid1],
        30,
        'a respawned spooler to run the killed task again',
        [m],
    )
    pid2 = second[0][2]
    assert pid2 in m.children()
    (work_dir / 'release.blocker').touch()
    want_done = {'blocker'} | {f'after-{i}' for i in range(5)}
    P.wait_until(
        lambda: (
            want_done <= {e[1] for e in _events(work_dir) if e[0] == 'done'}
            and not spoolfmt.runnable_files(str(spool_dir))
        ),
        30,
        'every task to finish',
        [m],
    )
    assert m.alive()
    m.stop()
    ev = _events(work_dir)
    done = Counter(e[1] for e in ev if e[0] == 'done')
    assert done == Counter(want_done), done
    starts = [e[2] for e in ev if e[:2] == ('start', 'blocker')]
    assert starts == [pid1, pid2], f'blocker started in {starts}'
    assert all(e[2] != pid1 for e in ev if e[0] == 'done'), 'the killed process finished a task?'
    assert spoolfmt.runnable_files(str(spool_dir)) == []


def test_two_spooler_processes_run_each_task_exactly_once(procs, spool_dir, work_dir):
    n = 3000
    for i in range(n):
        spoolfmt.write_task(str(spool_dir), [(b'id', b'%d' % i)])
    m = procs.master(
        ['--spooler-processes', '2', '--spooler', spool_dir, '--spooler-import', REC, '--spooler-quiet'],
        env={'REC_DIR': work_dir, 'REC_TAG': 'ours', 'REC_SLEEP': '0.0002'},
    )

    def ids():
        return {f: P.read_lines(f) for f in glob.glob(str(work_dir / 'ids.*'))}

    P.wait_until(
        lambda: sum(len(v) for v in ids().values()) >= n and not spoolfmt.runnable_files(str(spool_dir)),
        90,
        f'two spooler processes to drain {n} tasks',
        [m],
    )
    kids = set(m.children())
    m.stop()
    per = ids()
    counts = Counter(i for v in per.values() for i in v)
    assert {k: c for k, c in counts.items() if c > 1} == {}
    assert set(counts) == {str(i) for i in range(n)}
    pids = {int(os.path.basename(f).split('.')[2]) for f, v in per.items() if v}
    assert len(pids) == 2, f'tasks ran in {len(pids)} process(es): { {f: len(v) for f, v in per.items()} }'
    assert pids <= kids, f'tasks ran outside the master ({pids} not in {kids})'


def test_task_enqueued_while_no_spooler_runs_is_executed_at_start(procs, spool_dir, work_dir):
    # enqueued through the `uwsgi` shim in a plain process that only knows the spool dir
    w = procs.python(
        ['-c', "import uwsgi; print(uwsgi.spool({b'id': b'offline-raw'}).decode())"],
        env={'UWSGIDECORATORS_SPOOLERS': spool_dir},
        name='offline-writer',
    )
    assert w.wait(30) == 0, w.tail()
    path = w.log().strip().splitlines()[-1]
    assert os.path.dirname(path) == str(spool_dir) and os.path.exists(path), path
    m = procs.master(
        ['--spooler', spool_dir, '--spooler-import', REC, '--spooler-frequency', '1'],
        env={'REC_DIR': work_dir, 'REC_TAG': 'ours'},
    )
    P.wait_until(
        lambda: any('offline-raw' in P.read_lines(f) for f in glob.glob(str(work_dir / 'ids.*'))),
        30,
        'the queued task to run',
        [m],
    )
    P.wait_until(lambda: not os.path.exists(path), 10, 'the done task to be deleted', [m])
    m.stop()
    assert spoolfmt.runnable_files(str(spool_dir)) == []


def test_spooler_killed_repeatedly_while_deleting_finished_tasks_loses_nothing(procs, spool_dir, work_dir):
    """Finished tasks are deleted by reaper threads after the handler returned: a kill -9 before
    that may run some of them again (as a kill between a handler's return and the unlink always
    could), but never loses one, and the files end up deleted."""
    n = 4000
    for i in range(n):
        spoolfmt.write_task(str(spool_dir), [(b'id', b'%d' % i)])
    m = procs.master(
        ['--spooler', spool_dir, '--spooler-import', REC, '--spooler-quiet'],
        # 0.5 ms a task: the drain lasts 2 s or more, so the kills land inside it however fast
        # the machine drains (without it a quiet machine drained all 4000 before the first kill)
        env={'REC_DIR': work_dir, 'REC_TAG': 'ours', 'REC_SLEEP': '0.0005'},
    )

    def ran() -> list[str]:
        return [i for f in glob.glob(str(work_dir / 'ids.*')) for i in P.read_lines(f)]

    kills = 0
    for step in range(1, 5):
        # kill -9 the spooler in the middle of the drain, each time a bit further in
        P.wait_until(lambda s=step: len(ran()) >= s * n // 6, 60, f'{step * n // 6} tasks to run', [m])
        kids = m.children()
        if not kids or not spoolfmt.runnable_files(str(spool_dir)):
            break
        for pid in kids:
            os.kill(pid, signal.SIGKILL)
        kills += 1
        P.wait_until(lambda old=set(kids): set(m.children()) - old, 30, 'a respawned spooler', [m])
    P.wait_until(
        lambda: set(ran()) >= {str(i) for i in range(n)} and not spoolfmt.runnable_files(str(spool_dir)),
        90,
        'every task to run',
        [m],
    )
    m.stop()
    counts = Counter(ran())
    assert set(counts) == {str(i) for i in range(n)}, 'a task was lost'
    assert kills >= 1, 'the drain ended before any kill: the test proved nothing'
    again = sum(c - 1 for c in counts.values())
    # Only tasks in flight at a kill run again: the one running and those awaiting deletion.
    assert again <= kills * 100, f'{again} tasks ran twice after {kills} kills'
    assert spoolfmt.runnable_files(str(spool_dir)) == []


def test_harakiri_is_a_failed_attempt_and_does_not_block_the_queue(procs, spool_dir, work_dir):
    """3 tasks of 4 s under a 2 s --spooler-harakiri: each kill counts as a failed attempt (back-off,
    --spooler-max-attempts), the tasks behind the killed one run, and after 2 attempts each task
    lands in dead/ with a reason. Before: task 0 restarted at once, for ever; 1 and 2 never ran."""
    from uwsgidecorators import _core

    for i in range(3):
        _core.spool_write(str(spool_dir), [(b'id', b'slow-%d' % i), (b'sleep', b'4')])
    m = procs.master(
        [
            '--spooler', spool_dir, '--spooler-import', FAULT, '--spooler-frequency', '1',
            '--spooler-harakiri', '2', '--spooler-retry-delay', '1', '--spooler-max-attempts', '2',
        ],  # fmt: skip
        env={'FAULT_DIR': work_dir},
    )
    dead = spool_dir / 'dead'
    P.wait_until(
        lambda: dead.is_dir() and len(list(dead.glob('*.reason'))) == 3,
        90,
        'the three tasks to land in dead/ after 2 harakiri each',
        [m],
    )
    m.stop()
    starts = Counter(e[1] for e in _events(work_dir) if e[0] == 'start')
    assert starts == Counter({'slow-0': 2, 'slow-1': 2, 'slow-2': 2}), starts
    assert not [e for e in _events(work_dir) if e[0] == 'done']
    for reason in dead.glob('*.reason'):
        text = reason.read_text()
        assert 'failed 2 times' in text and 'harakiri' in text, text
    assert len([p for p in dead.iterdir() if not p.name.endswith('.reason')]) == 3  # nothing lost
    assert spoolfmt.runnable_files(str(spool_dir)) == []
    assert 'harakiri counted as failed attempt 1' in m.log()
