"""Harakiri in every kind of process, as real processes: `@harakiri(n)` / `uwsgi.set_user_harakiri`
and `--harakiri` / `--spooler-harakiri` kill a process past its deadline, the master respawns it,
and its log line names the process (kind and number), its pid and the function the deadline
guarded. A spooler task killed so runs again (nothing is lost).

Every wait is bounded; the master is stopped by pid (the `procs` fixture).
"""

from __future__ import annotations

import re
import signal

from interop import sigapp
from interop.procs import pid_alive, wait_until

_events = sigapp.events
_start = sigapp.start

# A 5-second function under a 1-second user harakiri; the second attempt (marker file) is fast.
SLOW = """
@harakiri(1)
def slow_five(first):
    if first:
        time.sleep(5)
    return 'fast'

def once():
    first = not os.path.exists(MARK)
    if first:
        open(MARK, 'w').close()
    return first
"""


def _killed_line(m, kind, pid, function):
    pattern = rf'HARAKIRI ON {kind} \(pid: {pid}\) running {re.escape(function)}: '
    return re.search(pattern, m.log())


def test_user_harakiri_in_a_worker_kills_respawns_and_names_the_function(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        SLOW
        + """
        @signal(50)
        def on_fifty(num):
            first = once()
            rec('start', first=first)
            slow_five(first)
            rec('done')

        @timer(0.5)
        def raise_it(num):
            uwsgi.signal(50)
        """.replace('\n        ', '\n'),
        workers=1,
    )
    wait_until(lambda: _events(out, 'done'), 30, 'harakiri, respawn, then a fast run', [m])
    first = [r for r in _events(out, 'start') if r['first']]
    assert len(first) == 1 and first[0]['worker'] == 1
    victim = first[0]['pid']
    assert not pid_alive(victim)
    assert _killed_line(m, 'WORKER 1', victim, 'sigtasks.slow_five'), m.log()
    assert 'user (uwsgi.set_user_harakiri)' in m.log()
    assert {r['pid'] for r in _events(out, 'done')} - {victim}  # a new worker finished it
    assert m.stop(signal.SIGTERM) == 0


def test_user_harakiri_in_a_spooler_task_reruns_the_task(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        SLOW
        + """
        @spool(pass_arguments=True)
        def task(tag):
            first = once()
            rec('start', tag=tag, first=first)
            slow_five(first)
            rec('done', tag=tag)

        if not os.path.exists(OUT + '.queued'):  # enqueued once, by the master's import
            open(OUT + '.queued', 'w').close()
            task.spool('t1')
        """.replace('\n        ', '\n'),
        workers=1,
        spooler=True,
    )
    wait_until(lambda: _events(out, 'done'), 30, 'harakiri, respawn, then the task again', [m])
    starts = _events(out, 'start')
    assert [r['first'] for r in starts] == [True, False] and all(r['spooler'] for r in starts)
    victim = starts[0]['pid']
    assert not pid_alive(victim) and starts[1]['pid'] != victim
    assert _killed_line(m, 'SPOOLER 1', victim, 'sigtasks.slow_five'), m.log()
    assert [r['tag'] for r in _events(out, 'done')] == ['t1']
    assert not [p for p in (tmp_path / 'spool').iterdir() if p.name.startswith('uwsgi_spoolfile')]
    assert m.stop(signal.SIGTERM) == 0


def test_option_harakiri_names_the_handler_and_the_spool_function(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(50)
        def stuck(num):
            first = not os.path.exists(MARK)
            rec('start', first=first)
            if first:
                open(MARK, 'w').close()
                time.sleep(5)
            rec('done')

        @timer(0.5)
        def raise_it(num):
            uwsgi.signal(50)

        @spool(pass_arguments=True)
        def hang(tag):
            first = not os.path.exists(MARK + tag)
            rec('task', first=first)
            if first:
                open(MARK + tag, 'w').close()
                time.sleep(5)
            rec('task_done')

        if not os.path.exists(OUT + '.queued'):
            open(OUT + '.queued', 'w').close()
            hang.spool('h')
        """,
        '--harakiri',
        '1',
        '--spooler-harakiri',
        '1',
        '--spooler-retry-delay',
        '0.1',
        workers=1,
        spooler=True,
    )
    wait_until(lambda: _events(out, 'done') and _events(out, 'task_done'), 30, 'both killed, then run again', [m])
    worker_victim = [r for r in _events(out, 'start') if r['first']][0]['pid']
    spooler_victim = [r for r in _events(out, 'task') if r['first']][0]['pid']
    assert _killed_line(m, 'WORKER 1', worker_victim, 'sigtasks.stuck'), m.log()
    assert _killed_line(m, 'SPOOLER 1', spooler_victim, 'sigtasks.hang'), m.log()
    assert 'signal handler (--harakiri)' in m.log() and '--spooler-harakiri' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_set_user_harakiri_zero_clears_the_deadline(procs, tmp_path):
    m, out = _start(
        procs,
        tmp_path,
        """
        @signal(50)
        def cleared(num):
            uwsgi.set_user_harakiri(1)
            uwsgi.set_user_harakiri(0)
            time.sleep(2.5)
            rec('done')

        @postfork
        def go():
            uwsgi.signal(50)
        """,
        workers=1,
    )
    wait_until(lambda: _events(out, 'done'), 20, 'the handler to finish', [m])
    assert 'HARAKIRI' not in m.log()
    assert len({r['pid'] for r in _events(out, 'done')}) == 1
    assert m.stop(signal.SIGTERM) == 0
