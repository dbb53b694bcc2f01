"""The `uwsgidecorators` master as real processes: fork, run tasks, respawn, harakiri, shutdown.

Every test starts the master through the `procs` fixture (stopped by pid at teardown, whatever
happens) and bounds every wait.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest
import uwsgi
import uwsgidecorators
from interop import spoolfmt
from interop.procs import pid_alive, read_jsonl, wait_until
from uwsgidecorators import _config, _core

TASKS = textwrap.dedent(
    """
    import json, os, time
    import uwsgi
    from uwsgidecorators import harakiri, postfork, spool, spoolraw

    OUT = os.environ['TASKS_OUT']
    MARK = os.environ.get('TASKS_MARK', OUT + '.mark')

    def record(**rec):
        rec['pid'] = os.getpid()
        fd = os.open(OUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, (json.dumps(rec, sort_keys=True) + '\\n').encode())
        finally:
            os.close(fd)

    @spool
    def greet(arguments):
        record(event='greet', who=arguments['who'], cwd=os.getcwd(), spooler=uwsgi.i_am_the_spooler())

    @spool(pass_arguments=True)
    def add(a, b, scale=1):
        record(event='add', result=(a + b) * scale)

    @spool(pass_arguments=True)
    def slow(seconds, tag):
        record(event='start', tag=tag)
        time.sleep(seconds)
        record(event='done', tag=tag)

    @spool(pass_arguments=True)
    def hang_once(tag):
        # first attempt hangs (to be killed), the retry finishes at once
        first = not os.path.exists(MARK + tag)
        record(event='start', tag=tag, first=first)
        if first:
            open(MARK + tag, 'w').close()
            time.sleep(60)
        record(event='done', tag=tag)

    @harakiri(1)
    def guarded_sleep(tag):
        time.sleep(60)

    @spool(pass_arguments=True)
    def user_harakiri_once(tag):
        first = not os.path.exists(MARK + tag)
        record(event='start', tag=tag, first=first)
        if first:
            open(MARK + tag, 'w').close()
            guarded_sleep(tag)
        record(event='done', tag=tag)

    @postfork
    def who_am_i():
        record(event='postfork', worker_id=uwsgi.worker_id(), spooler=uwsgi.i_am_the_spooler(),
               masterpid=uwsgi.masterpid(), spoolers=[s.decode() for s in uwsgi.spoolers],
               spooler_pid=uwsgi.spooler_pid(), spooler_pids=uwsgi.spooler_pids(), numproc=uwsgi.numproc)

    @postfork(2)
    def only_worker_two():
        record(event='postfork2', worker_id=uwsgi.worker_id())
    """
)

SPAWNED = re.compile(r'spawned the uWSGI spooler on dir (\S+) with pid (\d+)')


@pytest.fixture
def tasks_py(tmp_path):
    path = tmp_path / 'mastertasks.py'
    path.write_text(TASKS)
    return path


@pytest.fixture
def out(tmp_path):
    return tmp_path / 'out.jsonl'


@pytest.fixture
def enqueue(spool_dir, tasks_py, out, monkeypatch):
    """The test process as a producer: the shim pointed at the master's spool dir."""
    monkeypatch.setenv('TASKS_OUT', str(out))
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    uwsgidecorators.configure(spooler=spool_dir)
    import importlib.util

    spec = importlib.util.spec_from_file_location('mastertasks_producer', tasks_py)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    _config.reset()


def _events(out, event, **match):
    return [r for r in read_jsonl(out) if r['event'] == event and all(r.get(k) == v for k, v in match.items())]


def _spooler_pids(proc):
    return [int(m.group(2)) for m in SPAWNED.finditer(proc.log())]


def _pending(spool_dir: Path):
    return [p for p in spool_dir.rglob('uwsgi_spoolfile_on_*') if p.is_file()]


def _start(procs, spool_dir, tasks_py, out, *extra, workers='0'):
    m = procs.master(
        ['--spooler', spool_dir, '--import', tasks_py, '--processes', workers, '--spooler-frequency', '1', *extra],
        env={'TASKS_OUT': out},
    )
    wait_until(lambda: _spooler_pids(m), 20, 'the spooler to start', [m])
    return m


def test_tasks_enqueued_by_the_test_process_run(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out)
    enqueue.greet({'who': 'dict'})
    enqueue.greet(who='kwargs')
    enqueue.add(2, 3, scale=10)
    uwsgi.spool({b'ud_spool_func': b'greet', b'ud_spool_ret': b'-2', b'who': b'raw'})
    wait_until(lambda: len(_events(out, 'greet')) == 3 and _events(out, 'add'), 20, 'four tasks', [m])
    greets = _events(out, 'greet')
    assert sorted(g['who'] for g in greets) == ['dict', 'kwargs', 'raw']
    assert all(g['cwd'] == str(spool_dir) and g['spooler'] is True for g in greets)
    assert _events(out, 'add')[0]['result'] == 50
    wait_until(lambda: not _pending(spool_dir), 10, 'the spool dir to drain', [m])
    assert 'done with task uwsgi_spoolfile_on_' in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_the_spooler_process_is_set_up_as_uwsgi_sets_up_its_own(procs, spool_dir, tasks_py, out, enqueue):
    """Lowest CPU priority, SIGALRM and SIGUSR2 ignored, SIGUSR1 = list the directory now."""
    m = procs.master(
        ['--spooler', spool_dir, '--import', tasks_py, '--spooler-frequency', '3600'], env={'TASKS_OUT': out}
    )
    wait_until(lambda: _spooler_pids(m), 20, 'the spooler to start', [m])
    pid = _spooler_pids(m)[0]
    # its pid is logged as soon as it is forked, before it has set itself up
    wait_until(lambda: os.getpriority(os.PRIO_PROCESS, pid) == 19, 10, 'the spooler at nice 19', [m])
    os.kill(pid, signal.SIGALRM)
    os.kill(pid, signal.SIGUSR2)
    enqueue.greet({'who': 'after-signals'})
    wait_until(lambda: _events(out, 'greet', who='after-signals'), 20, 'a task after the signals', [m])
    assert _spooler_pids(m) == [pid] and pid_alive(pid)

    # A task that no event makes runnable: its name appears while another process holds a read
    # lock on it, and that lock goes with a read-only close, which inotify does not report to the
    # spooler. Only a scan finds it again, and the periodic one is an hour away.
    job = [(b'ud_spool_func', b'greet'), (b'ud_spool_ret', b'-2'), (b'who', b'rescan')]
    temp = spool_dir / 'incoming'
    temp.write_bytes(_core.encode_spool(job))
    with open(temp, 'rb') as held:
        fcntl.lockf(held, fcntl.LOCK_SH)
        temp.rename(spool_dir / spoolfmt.task_name())
        time.sleep(0.5)  # the spooler tries it at once, finds it locked and lets it be
    time.sleep(1.0)
    assert not _events(out, 'greet', who='rescan')
    os.kill(pid, signal.SIGUSR1)
    wait_until(lambda: _events(out, 'greet', who='rescan'), 20, 'the task found by the rescan', [m])
    assert _spooler_pids(m) == [pid]
    assert m.stop(signal.SIGTERM) == 0


def test_signals_sent_as_soon_as_the_spooler_exists_do_not_kill_it(procs, spool_dir, tasks_py, out, enqueue):
    """SIGALRM and SIGUSR2 (ignored by a spooler) and SIGUSR1 (rescan) sent the moment the master
    logs the spooler's pid wait, blocked, until the spooler has its handlers. Before, they hit
    the default action in between and killed it (every time in 15 tries)."""
    m = procs.master(
        ['--spooler', spool_dir, '--import', tasks_py, '--spooler-frequency', '3600'], env={'TASKS_OUT': out}
    )
    end = time.monotonic() + 20
    while not _spooler_pids(m) and time.monotonic() < end:
        pass  # as tight as can be: the signals must land right after the fork
    pid = _spooler_pids(m)[0]
    for sig in (signal.SIGALRM, signal.SIGUSR2, signal.SIGUSR1):
        os.kill(pid, sig)
    enqueue.greet({'who': 'after-early-signals'})
    wait_until(lambda: _events(out, 'greet', who='after-early-signals'), 20, 'a task after the signals', [m])
    assert _spooler_pids(m) == [pid] and pid_alive(pid)
    assert 'killed by signal' not in m.log()
    assert m.stop(signal.SIGTERM) == 0


def _sleeps_of_main_thread(pid: int) -> int:
    """How many times the process's main thread went to sleep (blocked) so far."""
    status = Path(f'/proc/{pid}/task/{pid}/status').read_text()
    return int(re.search(r'^voluntary_ctxt_switches:\s+(\d+)', status, re.M).group(1))


def test_idle_processes_sleep_until_something_happens(procs, spool_dir, tasks_py, out, enqueue):
    """Idle processes do not poll for signals (a Unix signal wakes them through Python's wake-up
    fd): the worker sleeps until something comes, the spooler wakes once a second (to see a
    changed uwsgi.set_spooler_frequency) and the master at its harakiri tick (twice a second).
    Polling at 10 Hz, as before, showed 30 sleeps per process in these 3 seconds."""
    m = procs.master(
        ['--spooler', spool_dir, '--import', tasks_py, '--processes', '1', '--spooler-frequency', '3600'],
        env={'TASKS_OUT': out},
    )
    wait_until(lambda: len(_events(out, 'postfork')) == 2, 20, 'the spooler and the worker', [m])
    spooler = _spooler_pids(m)[0]
    worker = next(e['pid'] for e in _events(out, 'postfork') if e['worker_id'] == 1)
    time.sleep(1.0)  # past start-up
    before = {pid: _sleeps_of_main_thread(pid) for pid in (spooler, worker, m.pid)}
    time.sleep(3.0)
    slept = {pid: _sleeps_of_main_thread(pid) - n for pid, n in before.items()}
    assert slept[spooler] <= 6, slept
    assert slept[worker] <= 3, slept
    assert slept[m.pid] <= 12, slept
    # Still awake to what matters: a task starts, and SIGTERM stops every process.
    enqueue.greet({'who': 'after-idle'})
    wait_until(lambda: _events(out, 'greet', who='after-idle'), 20, 'a task after the idle spell', [m])
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_postfork_hooks_and_identity_in_every_child(procs, spool_dir, tasks_py, out):
    m = _start(procs, spool_dir, tasks_py, out, workers='2')
    wait_until(lambda: len(_events(out, 'postfork')) == 3 and _events(out, 'postfork2'), 20, 'post-fork hooks', [m])
    forks = _events(out, 'postfork')
    assert sorted(f['worker_id'] for f in forks) == [0, 1, 2]
    assert [f['spooler'] for f in forks if f['worker_id'] == 0] == [True]
    assert all(f['spooler'] is None for f in forks if f['worker_id'])
    assert {f['masterpid'] for f in forks} == {m.pid}
    assert all(f['spoolers'] == [str(spool_dir)] for f in forks)
    assert [e['worker_id'] for e in _events(out, 'postfork2')] == [2]
    spooler = _spooler_pids(m)[0]
    # workers are forked after the spooler: they see its pid in the master's shared table
    assert all(f['spooler_pid'] == spooler and f['spooler_pids'] == [spooler] for f in forks if f['worker_id'])
    assert {f['numproc'] for f in forks} == {2}
    assert 'spawned uWSGI worker 1' in m.log() and 'spawned uWSGI worker 2' in m.log()
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_spooler_killed_with_sigkill_is_respawned_and_the_task_rerun(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out)
    first = _spooler_pids(m)[0]
    enqueue.hang_once('k9')
    wait_until(lambda: _events(out, 'start', tag='k9'), 20, 'the task to start', [m])
    assert _events(out, 'start', tag='k9')[0]['pid'] == first
    os.kill(first, signal.SIGKILL)
    wait_until(lambda: len(_spooler_pids(m)) >= 2, 20, 'a new spooler', [m])
    second = _spooler_pids(m)[-1]
    assert second != first and not pid_alive(first)
    # at-least-once: the file survived the crash and the new spooler runs it again
    wait_until(lambda: _events(out, 'done', tag='k9'), 20, 'the re-run', [m])
    assert _events(out, 'done', tag='k9')[0]['pid'] == second
    assert 'killed by signal 9' in m.log()
    wait_until(lambda: not _pending(spool_dir), 10, 'the spool dir to drain', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_sigterm_lets_the_running_task_finish_then_exits_0(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out, workers='1')
    enqueue.slow(2, 'graceful')
    wait_until(lambda: _events(out, 'start', tag='graceful'), 20, 'the slow task to start', [m])
    m.children()
    t0 = time.monotonic()
    os.kill(m.pid, signal.SIGTERM)
    rc = m.wait(20)
    assert rc == 0, m.tail()
    assert time.monotonic() - t0 < 15
    assert _events(out, 'done', tag='graceful'), m.tail()
    assert not _pending(spool_dir)  # it finished as SPOOL_OK: deleted
    assert m.leftovers() == []
    assert 'SIGTERM received' in m.log() and 'SIGKILL' not in m.log()


def test_shutdown_kills_what_outlives_reload_mercy(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out, '--reload-mercy', '1')
    enqueue.slow(60, 'stuck')
    wait_until(lambda: _events(out, 'start', tag='stuck'), 20, 'the task to start', [m])
    m.children()
    os.kill(m.pid, signal.SIGINT)
    assert m.wait(15) == 0, m.tail()
    assert 'mercy over: SIGKILL to 1 child process(es)' in m.log()
    assert 'killed by signal 9' in m.log()
    assert m.leftovers() == []
    assert len(_pending(spool_dir)) == 1  # killed mid-task: kept for the next run


def test_a_second_stop_signal_skips_the_mercy(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out, '--reload-mercy', '60')
    enqueue.slow(60, 'stuck')
    wait_until(lambda: _events(out, 'start', tag='stuck'), 20, 'the task to start', [m])
    m.children()
    os.kill(m.pid, signal.SIGINT)
    wait_until(lambda: 'SIGINT received: stopping 1 child process(es)' in m.log(), 10, 'the first SIGINT', [m])
    t0 = time.monotonic()
    os.kill(m.pid, signal.SIGINT)  # Ctrl-C twice
    assert m.wait(15) == 0, m.tail()
    assert time.monotonic() - t0 < 10
    assert 'SIGINT received again' in m.log() and 'mercy over: SIGKILL to 1 child process(es)' in m.log()
    assert m.leftovers() == []


def test_spooler_harakiri(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out, '--spooler-harakiri', '1')
    enqueue.hang_once('hk')
    wait_until(lambda: _events(out, 'done', tag='hk'), 25, 'harakiri then the re-run', [m])
    assert 'HARAKIRI ON SPOOLER 1' in m.log() and '--spooler-harakiri' in m.log()
    starts = _events(out, 'start', tag='hk')
    assert len(starts) == 2 and starts[0]['pid'] != starts[1]['pid']
    assert m.stop(signal.SIGTERM) == 0


def test_user_harakiri_decorator(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out)
    enqueue.user_harakiri_once('uh')
    wait_until(lambda: _events(out, 'done', tag='uh'), 25, 'user harakiri then the re-run', [m])
    assert 'HARAKIRI ON SPOOLER 1' in m.log() and 'set_user_harakiri' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_max_tasks_recycles_the_spooler(procs, spool_dir, tasks_py, out, enqueue):
    m = _start(procs, spool_dir, tasks_py, out, '--spooler-max-tasks', '2', '--spooler-quiet')
    for i in range(5):
        enqueue.add(i, 0)
    wait_until(lambda: len(_events(out, 'add')) == 5, 25, 'five tasks over recycled spoolers', [m])
    pids = {r['pid'] for r in _events(out, 'add')}
    assert len(pids) >= 3, pids
    assert 'recycled itself' in m.log() and 'done with task' not in m.log()  # quiet
    assert m.stop(signal.SIGTERM) == 0


def test_seed_command_line_runs(procs, tmp_path, tasks_py, out):
    (tmp_path / 'mytasks.py').write_text(TASKS)
    m = procs.master(
        ['--socket', ':3031', '--spooler', 'myspool', '--master', '--processes', '4', '--import', 'mytasks'],
        env={'TASKS_OUT': out},
        cwd=tmp_path,
    )
    wait_until(lambda: len(_events(out, 'postfork')) == 5, 20, '4 workers and a spooler', [m])
    log = m.log()
    assert log.count('option --socket is not served') == 1
    assert (tmp_path / 'myspool').is_dir()
    assert SPAWNED.search(log).group(1) == os.path.realpath(tmp_path / 'myspool')
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []


def test_spooler_import_failure_backs_off(procs, spool_dir, tmp_path, out):
    bad = tmp_path / 'broken.py'
    bad.write_text('raise RuntimeError("broken on purpose")\n')
    m = procs.master(['--spooler', spool_dir, '--spooler-import', bad, '--processes', '0'], env={'TASKS_OUT': out})
    wait_until(lambda: m.log().count('broken on purpose') >= 3, 20, 'three failed starts', [m])
    assert 'respawning in' in m.log()
    assert m.stop(signal.SIGTERM) == 0


def test_import_failure_stops_the_master(procs, spool_dir, tmp_path):
    bad = tmp_path / 'broken.py'
    bad.write_text('raise RuntimeError("broken on purpose")\n')
    m = procs.master(['--spooler', spool_dir, '--import', bad])
    assert m.wait(20) == 1
    assert 'broken on purpose' in m.log() and 'import failed' in m.log()


def test_golden_modules_load(procs, golden_dir, tmp_path):
    # producer_app.py (run by real uWSGI in the master with two --spooler-external dirs) and
    # consumer_spooler.py (a --spooler-import module) must load unmodified.
    a, b = tmp_path / 'A', tmp_path / 'B'
    raw = tmp_path / 'raw.json'
    consumed = tmp_path / 'consumed.jsonl'
    m = procs.master(
        [
            '--master',
            '--spooler-external',
            a,
            '--spooler-external',
            b,
            '--spooler',
            tmp_path / 'C',
            '--spooler-import',
            golden_dir / 'consumer_spooler.py',
            '--import',
            golden_dir / 'producer_app.py',
            '--env',
            f'GOLDEN_RAW={raw}',
            '--env',
            f'GOLDEN_SPOOL_B={os.path.realpath(b)}',
            '--env',
            f'UWSGI_GOLDEN_OUT={consumed}',
            '--processes',
            '0',
            '--spooler-frequency',
            '1',
        ],
    )
    wait_until(lambda: 'GOLDEN PRODUCER DONE' in m.log(), 20, 'the golden producer', [m])
    results = json.loads(raw.read_text())['jobs']
    ok = [j for j in results if j['ok']]
    assert len(ok) >= 38, [j for j in results if not j['ok']]
    # one task in the consumer's own dir, through the shim of the test process
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT):
        os.environ.pop(var, None)
    _config.reset()
    try:
        uwsgidecorators.configure(spooler=tmp_path / 'C')
        uwsgi.spool({b'golden': b'consumer'})
    finally:
        _config.reset()
    wait_until(lambda: read_jsonl(consumed), 20, 'the golden consumer', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_django_setup_runs_before_imports(procs, spool_dir, tmp_path, out):
    pytest.importorskip('django')
    (tmp_path / 'djsettings.py').write_text(
        'SECRET_KEY = "test"\nINSTALLED_APPS = ["django.contrib.contenttypes"]\nTASKS_GREETING = "from settings"\n'
    )
    (tmp_path / 'djtasks.py').write_text(
        textwrap.dedent(
            """
            import json, os
            from django.apps import apps
            from django.conf import settings
            # importing models needs django.setup() to have run already
            from django.contrib.contenttypes.models import ContentType
            with open(os.environ['TASKS_OUT'], 'a') as f:
                f.write(json.dumps({'event': 'django', 'ready': apps.ready, 'greeting': settings.TASKS_GREETING}) + '\\n')
            """
        )
    )
    m = procs.master(
        ['--spooler', spool_dir, '--pythonpath', tmp_path, '--import', 'djtasks', '--processes', '0'],
        env={'TASKS_OUT': out, 'DJANGO_SETTINGS_MODULE': 'djsettings'},
    )
    wait_until(lambda: _events(out, 'django'), 20, 'the django task module', [m])
    assert _events(out, 'django')[0] == {'event': 'django', 'ready': True, 'greeting': 'from settings'}
    assert 'django.setup() done' in m.log()
    assert m.stop(signal.SIGTERM) == 0
