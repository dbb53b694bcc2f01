"""The seed's examples run unmodified under our master, as real processes:

* examples/mytasks.py with its quick-start command line (@spool, @timer(3), @timer(10,
  target='spooler'));
* examples/django_project: a real Django project (Django from PyPI, sqlite) started from its
  uWSGI-style uwsgi.ini, whose task.py imports Django models at module level and has uWSGI's
  ``@cron(40, 2, -1, -1, -1)`` and a ``@spool`` task. The cron entry is reached by moving the
  master's test clock, not by waiting for 02:40.

Every wait is bounded; every process is stopped by pid at teardown (the `procs` fixture).
"""

from __future__ import annotations

import re
import shutil
import signal
import sqlite3
import time
from pathlib import Path

import pytest
from interop.procs import wait_until
from uwsgidecorators import _signals

EXAMPLES = Path(__file__).resolve().parent.parent / 'examples'
CONTROL = re.compile(r'signal control socket: (\S+)')


def test_mytasks_quick_start_command_line(procs, tmp_path):
    shutil.copy(EXAMPLES / 'mytasks.py', tmp_path / 'mytasks.py')
    m = procs.master(
        ['--socket', ':3031', '--spooler', 'myspool', '--master', '--processes', '4', '--import', 'mytasks'],
        cwd=tmp_path,
    )
    wait_until(lambda: 'spawned uWSGI worker 4 ' in m.log(), 20, 'four workers', [m])
    # enqueue as the docstring says, from a process the master did not start
    producer = procs.python(
        ['-c', "import mytasks; mytasks.hello(name='you'); mytasks.add(2, 3)"],
        name='producer',
        cwd=tmp_path,
        env={'UWSGIDECORATORS_SPOOLERS': 'myspool'},
    )
    assert producer.wait(20) == 0, producer.log()
    wait_until(lambda: 'hello, you!' in m.log() and '2 + 3 = 5' in m.log(), 20, 'the spooled jobs', [m])
    wait_until(
        lambda: m.log().count('3 seconds elapsed') >= 2 and '10 seconds elapsed in the spooler' in m.log(),
        30,
        'both timers',
        [m],
    )
    assert 'option --socket is not served' in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def _django_project(tmp_path) -> Path:
    project = tmp_path / 'django_project'
    shutil.copytree(
        EXAMPLES / 'django_project', project, ignore=shutil.ignore_patterns('db.sqlite3', 'spool', '__pycache__')
    )
    return project


def _db(project: Path, sql: str):
    conn = sqlite3.connect(project / 'db.sqlite3', timeout=20)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_django_project_from_the_seed_ini(procs, tmp_path):
    pytest.importorskip('django')
    project = _django_project(tmp_path)
    migrate = procs.python(['manage.py', 'migrate', '-v', '0'], name='migrate', cwd=project)
    assert migrate.wait(60) == 0, migrate.log()
    make_sessions = procs.python(
        [
            'manage.py',
            'shell',
            '-c',
            (
                'from django.contrib.sessions.backends.db import SessionStore\n'
                'for i in range(3):\n'
                '    s = SessionStore(); s["i"] = i; s.create()\n'
            ),
        ],
        name='sessions',
        cwd=project,
    )
    assert make_sessions.wait(60) == 0, make_sessions.log()
    assert _db(project, 'select count(*) from django_session') == [(3,)]

    # Started from another directory: the ini's chdir (%d) and spooler (%dspool) find the project.
    # TZ says Tokyo, but Django exports its TIME_ZONE (UTC) before task.py adds the cron entry.
    m = procs.master(
        ['--ini', project / 'uwsgi.ini'],
        cwd=tmp_path,
        env={'UWSGIDECORATORS_TEST_CLOCK': '1', 'TZ': 'Asia/Tokyo'},
    )
    wait_until(lambda: 'spawned uWSGI worker 4 ' in m.log(), 30, 'four workers and the spooler', [m])
    log = m.log()
    assert 'django.setup() done (settings: mysite.settings)' in log and 'imported task' in log
    assert 'option --socket is not served' in log and 'option --module is not served' in log
    control = CONTROL.search(log).group(1)

    # 02:40:05 UTC tomorrow, on the master's cron clock
    now = int(time.time())
    target = now - now % 86_400 + 86_400 + 2 * 3600 + 40 * 60 + 5
    _signals.set_test_clock_offset(target - now, control=control)
    wait_until(
        lambda: _db(project, "select count(*) from notes_note where source = 'cron'") == [(1,)],
        30,
        'the 02:40 cron entry to clear the sessions',
        [m],
    )
    assert _db(project, 'select count(*) from django_session') == [(0,)]
    assert _db(project, "select text from notes_note where source = 'cron'") == [('cleared 3 session(s)',)]
    assert "it's 2:40 in the morning: clearing django sessions" in m.log()

    # a @spool task enqueued by a Django process the master did not start
    producer = procs.python(
        ['manage.py', 'shell', '-c', "import task; task.save_note(text='from a shell')"],
        name='producer',
        cwd=project,
        env={'UWSGIDECORATORS_SPOOLERS': project / 'spool'},
    )
    assert producer.wait(60) == 0, producer.log()
    wait_until(
        lambda: _db(project, "select text from notes_note where source = 'spooler'") == [('from a shell',)],
        30,
        'the spooled task',
        [m],
    )
    spooler_pid = int(re.search(r'spooler on dir \S+ with pid (\d+)', m.log()).group(1))
    assert _db(project, "select pid from notes_note where source = 'spooler'") == [(spooler_pid,)]
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


# The seed's decorators-doc examples for @mulefunc (its three forms), @thread and @postfork
# (with @thread), as written there (print made a function call for Python 3), in one task module.
SEED_MULES = '''
import time
import uwsgi
from uwsgidecorators import mulefunc, postfork, thread

@mulefunc
def i_am_an_offloaded_function(argument1, argument2):
    print(argument1, argument2)

@mulefunc(3)
def on_three():
    print("I'm running on mule 3.")

@mulefunc('old_mcdonalds_farm')
def on_mcd():
    print("I'm running on a mule on Old McDonalds' farm.")

@thread
def a_running_thread():
    while True:
        time.sleep(2)
        print("i am a no-args thread")

@thread
def a_running_thread_with_args(who):
    while True:
        time.sleep(2)
        print("Hello %s (from arged-thread)" % who)

a_running_thread()
a_running_thread_with_args("uWSGI")

@postfork
def hello_world():
    print("Hello World")

@postfork
@thread
def a_post_fork_thread():
    while True:
        time.sleep(3)
        print("Hello from a thread in worker %d" % uwsgi.worker_id())
'''


def test_seed_mulefunc_thread_and_postfork_examples(procs, tmp_path):
    (tmp_path / 'seedmules.py').write_text(SEED_MULES)
    control = tmp_path / 'ctl' / 'control'
    m = procs.master(
        ['--processes', '1', '--mules', '3', '--farm', 'old_mcdonalds_farm:1,2', '--import', 'seedmules',
         '--control-socket', control],
        cwd=tmp_path,
        env={'PYTHONUNBUFFERED': '1'},
    )
    wait_until(lambda: 'spawned uWSGI mule 3 ' in m.log(), 20, 'three mules', [m])
    # called from a process the master did not start (a web worker, in a deployment)
    caller = procs.python(
        ['-c', 'import seedmules; seedmules.i_am_an_offloaded_function("a1", "a2"); seedmules.on_three(); seedmules.on_mcd()'],
        name='caller',
        cwd=tmp_path,
        env={'UWSGIDECORATORS_CONTROL': control},
    )
    assert caller.wait(20) == 0, caller.log()
    wait_until(
        lambda: all(
            s in m.log()
            for s in (
                'a1 a2',
                "I'm running on mule 3.",
                "I'm running on a mule on Old McDonalds' farm.",
                'i am a no-args thread',
                'Hello uWSGI (from arged-thread)',
                'Hello from a thread in worker 1',
                'Hello from a thread in worker 0',  # the mules' (worker_id() is 0 there, as in uWSGI)
            )
        ),
        30,
        'the examples\' output',
        [m],
    )
    assert m.log().count('Hello World') == 4  # @postfork: the worker and the three mules


# The seed's @lock example (uWSGI's decorators page), as written there, plus the @postfork the
# page suggests combining it with, so that each worker calls it.
SEED_LOCK = '''
from uwsgidecorators import lock, postfork

@lock
def dangerous_op():
    print("Concurrency is for fools!")

@postfork
def call_it():
    dangerous_op()
'''


def test_seed_lock_example_under_our_master(procs, tmp_path):
    (tmp_path / 'locktasks.py').write_text(SEED_LOCK)
    m = procs.master(['--master', '--processes', '2', '--import', 'locktasks'], cwd=tmp_path)
    wait_until(lambda: m.log().count('Concurrency is for fools!') == 2, 20, 'both workers under the lock', [m])
    assert 'not built' not in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []
