"""What idle processes of our master carry (bench/bench_memory.py measures the memory itself):
modules only some roles need are not loaded at all until used, the spooler starts its reaper
threads only when tasks finish, and the children still stop when the master is killed (their
parent-death signal is set through the core, not through ctypes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from interop import sigapp
from interop.procs import our_env, pid_alive, wait_until

BODY = """
import sys

@spool
def task(arguments):
    return uwsgi.SPOOL_OK

@postfork
def loaded():
    rec('modules', names=sorted(sys.modules))
"""


# What `dataclasses` pulls in: ~1 MiB per process and ~10 ms of import time that nothing needs.
# (Not tokenize: logging brings it on 3.11, through traceback and linecache.)
_HEAVY = ('dataclasses', 'inspect', 'ast', 'dis')


def test_import_uwsgi_loads_no_heavy_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('UWSGIDECORATORS_')}
    env['UWSGIDECORATORS_SPOOLERS'] = str(tmp_path)
    code = (
        'import sys, uwsgi, uwsgidecorators\n'
        'uwsgi.opt\n'
        f'print(" ".join(sorted(m for m in {(*_HEAVY, "json")!r} if m in sys.modules)))\n'
    )
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True)
    # json too: without UWSGIDECORATORS_OPT (a master's children have it) nothing parses JSON.
    assert out.stdout.split() == []


def _threads(pid: int) -> list[str]:
    names = []
    for tid in os.listdir(f'/proc/{pid}/task'):
        try:
            with open(f'/proc/{pid}/task/{tid}/comm') as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass
    return names


def test_idle_children_load_no_module_they_do_not_use(procs, tmp_path):
    m, out = sigapp.start(procs, tmp_path, BODY, workers=1, spooler=True)
    wait_until(lambda: len(sigapp.events(out, 'modules')) >= 2, 30, 'the worker and the spooler', [m])
    for rec in sigapp.events(out, 'modules'):
        loaded = set(rec['names'])
        # ctypes (parent-death signal), tempfile/shutil/random (the runtime dir), pickle (only
        # for pass_arguments jobs and mules): each was in every child before, shared or not.
        # dataclasses (with inspect, ast, dis, tokenize) came with the runtime's own classes.
        unwanted = {'ctypes', 'tempfile', 'shutil', 'random', 'bz2', 'lzma', 'pickle', *_HEAVY} & loaded
        assert not unwanted, f"{'spooler' if rec['spooler'] else 'worker'} loaded {sorted(unwanted)}"
    assert m.stop(signal.SIGTERM) == 0


def test_an_idle_spooler_has_no_reaper_thread_until_a_task_finishes(procs, tmp_path):
    m, out = sigapp.start(procs, tmp_path, BODY + "\n@spool\ndef ping(arguments):\n    rec('ping')\n    return uwsgi.SPOOL_OK\n",
                          workers=1, spooler=True)
    wait_until(lambda: len(sigapp.events(out, 'modules')) >= 2, 30, 'the worker and the spooler', [m])
    spooler = next(r['pid'] for r in sigapp.events(out, 'modules') if r['spooler'])
    time.sleep(0.3)
    assert not [t for t in _threads(spooler) if t.startswith('spool-reaper')], _threads(spooler)
    # A task finishes: its file is deleted by a reaper thread, started for it.
    env = dict(os.environ, UWSGIDECORATORS_SPOOLERS=str(tmp_path / 'spool'))
    code = 'import uwsgi; uwsgi.spool({b"ud_spool_func": b"ping"})'
    assert os.spawnve(os.P_WAIT, os.sys.executable, [os.sys.executable, '-c', code], env) == 0
    wait_until(lambda: sigapp.events(out, 'ping'), 20, 'the task', [m])
    # (the master's control socket lives in the spool dir's `.uwsgidecorators/`)
    tasks = lambda: [n for n in os.listdir(tmp_path / 'spool') if not n.startswith('.')]  # noqa: E731
    wait_until(lambda: not tasks() or None, 20, 'the task file deleted', [m])
    assert [t for t in _threads(spooler) if t.startswith('spool-reaper')]
    assert m.stop(signal.SIGTERM) == 0


def test_children_stop_when_the_master_is_killed(procs, tmp_path):
    m, out = sigapp.start(procs, tmp_path, BODY, workers=1, spooler=True)
    wait_until(lambda: len(sigapp.events(out, 'modules')) >= 2, 30, 'the worker and the spooler', [m])
    children = [r['pid'] for r in sigapp.events(out, 'modules')]
    os.kill(m.pid, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in children), 20, 'the orphaned children to stop')
    assert json.dumps(children)  # the pids were real records


# What the runtime must not load in a process whose application does not: typing (re, enum,
# functools...), logging (traceback, linecache, tokenize...), subprocess, json, difflib. Each
# costs its share of the master's heap, which every child maps.
_STDLIB_UNUSED = ('typing', 'logging', 'traceback', 'linecache', 'tokenize', 'subprocess', 'json', 'difflib')

# No `rec` from interop/sigapp (it imports json): each process writes its module names with
# plain file writes, over and over from a thread, so the last file shows the idle process.
LISTING_APP = """
import os, sys, threading, time
import uwsgi
from uwsgidecorators import postfork, spool

OUT = os.environ['MODS_OUT']


def _dump_forever(role):
    path = os.path.join(OUT, '%s.%d' % (role, os.getpid()))
    while True:
        time.sleep(0.2)
        fd = os.open(path + '.tmp', os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, ' '.join(sorted(sys.modules)).encode())
        os.close(fd)
        os.rename(path + '.tmp', path)


def _watch(role):
    threading.Thread(target=_dump_forever, args=(role,), daemon=True).start()


@spool
def task(arguments):
    return uwsgi.SPOOL_OK


@postfork
def _child():
    _watch('spooler' if uwsgi.i_am_the_spooler() else 'mule' if uwsgi.mule_id() else 'worker')


_watch('master')  # the master imports this module; its children do not (they are forked)
"""


def test_import_uwsgi_or_uwsgidecorators_loads_no_unused_stdlib_module(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith('UWSGIDECORATORS_')}
    for what in ('uwsgi', 'uwsgidecorators', 'uwsgidecorators.cli'):
        code = f'import sys, {what}\nprint(" ".join(sorted(m for m in {_STDLIB_UNUSED!r} if m in sys.modules)))\n'
        out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split() == [], f'import {what}'


def test_idle_master_and_children_load_no_unused_stdlib_module(procs, tmp_path):
    out = tmp_path / 'mods'
    out.mkdir()
    (tmp_path / 'listing.py').write_text(LISTING_APP)
    m = procs.master(
        ['--import', 'listing', '--processes', '1', '--spooler', tmp_path / 'spool', '--mule'],
        env={'MODS_OUT': out, 'PYTHONPATH': tmp_path},
        cwd=tmp_path,
    )
    (tmp_path / 'spool').mkdir(exist_ok=True)
    roles = ('master', 'worker', 'spooler', 'mule')
    found = lambda: {n.partition('.')[0] for n in os.listdir(out) if not n.endswith('.tmp')}  # noqa: E731
    wait_until(lambda: found() >= set(roles), 30, 'every process listing its modules', [m])
    time.sleep(1.0)  # idle a while: the listings are rewritten every 0.2 s
    for name in os.listdir(out):
        if name.endswith('.tmp'):
            continue
        loaded = set((out / name).read_text().split())
        unwanted = sorted(set(_STDLIB_UNUSED) & loaded)
        assert not unwanted, f'the {name.partition(".")[0]} loaded {unwanted}'
    assert m.stop(signal.SIGTERM) == 0


_FACADE = """
import sys
from _uwsgidecorators_runtime import log
a = log.get_logger('uwsgidecorators.x')
{setup}
a.info('one %d', 1)
a.warning('two')
try:
    1 / 0
except ZeroDivisionError:
    a.exception('three')
assert 'logging' not in sys.modules and 'traceback' in sys.modules
import logging  # the application loads logging later, without configuring it
a.info('four')
logging.getLogger('app').info('five')
"""


def _run_facade(setup: str) -> list[str]:
    out = subprocess.run([sys.executable, '-c', _FACADE.format(setup=setup)], capture_output=True, text=True, check=True)
    return out.stderr.splitlines()


def test_log_lines_without_logging_then_through_it_without_losing_any():
    lines = _run_facade('log.setup()')
    assert lines[:3] == ['one 1', 'two', 'three']
    assert lines[3] == 'Traceback (most recent call last):' and lines[-3] == 'ZeroDivisionError: division by zero'
    # logging loaded later: the cli's handler is installed (the root logger had none), INFO shown
    assert lines[-2:] == ['four', 'five']


def test_log_lines_with_a_date_before_and_after_logging_is_loaded():
    lines = _run_facade("log.setup('%Y@')")
    year = time.strftime('%Y@')
    assert lines[0] == f'{year} - one 1' and lines[1] == f'{year} - two'
    assert lines[-2:] == [f'{year} - four', f'{year} - five']


def test_log_lines_outside_the_cli_are_those_of_an_unconfigured_logging():
    lines = _run_facade('')
    assert lines[0] == 'two' and 'three' in lines  # INFO dropped, warnings and errors shown
    assert 'four' not in lines and 'five' not in lines  # logging's own defaults: no handler, WARNING


def test_an_app_that_loads_logging_logs_through_the_cli_handler_from_its_first_line(procs, tmp_path):
    # The master does not load logging; the application does, and logs while it is imported,
    # before any line of ours went through logging: its line is not lost, and has the date.
    (tmp_path / 'lg.py').write_text('import logging\nlogging.getLogger("app").info("app line at import")\n')
    (tmp_path / 'spool').mkdir()
    m = procs.master(['--import', 'lg', '--processes', '1', '--spooler', tmp_path / 'spool', '--log-date=%Y@'],
                     env={'PYTHONPATH': tmp_path}, cwd=tmp_path)
    wait_until(lambda: 'spawned uWSGI worker 1 ' in m.log(), 30, 'the worker', [m])
    year = time.strftime('%Y@')
    assert f'{year} - app line at import' in m.log().splitlines()
    assert f'{year} - imported lg' in m.log().splitlines()
    assert m.stop(signal.SIGTERM) == 0


_THREADS_BODY = """
import threading

AT_IMPORT = id(threading._active_limbo_lock)
if os.environ.get('EXTRA_THREAD'):
    _release = threading.Event()
    threading.Thread(target=_release.wait, daemon=True, name='app-thread').start()

@postfork
def after():
    t = threading.Thread(target=lambda: None)
    t.start()
    t.join()
    rec('threads', hook_ran=id(threading._active_limbo_lock) != AT_IMPORT,
        main=threading.current_thread() is threading.main_thread(),
        names=sorted(x.name for x in threading.enumerate()), started_one=not t.is_alive())
"""


def _fork_threads(procs, tmp_path, env):
    m, out = sigapp.start(procs, tmp_path, _THREADS_BODY, workers=2, env=env)
    wait_until(lambda: len(sigapp.events(out, 'threads')) >= 2, 30, 'both workers', [m])
    records = sigapp.events(out, 'threads')
    assert m.stop(signal.SIGTERM) == 0
    return records


@pytest.mark.skipif(sys.version_info[:2] not in ((3, 10), (3, 11)), reason='the hook is held off on 3.10 and 3.11')
def test_a_single_threaded_master_forks_without_threadings_hook_and_threads_still_work(procs, tmp_path):
    # The hook would only rebuild what is right already; skipping it keeps its pages shared.
    for r in _fork_threads(procs, tmp_path, {}):
        assert r['hook_ran'] is False
        assert r['main'] and r['started_one'] and r['names'] == ['MainThread'], r


def test_a_master_with_another_thread_forks_with_threadings_hook(procs, tmp_path):
    # The application's thread exists only in the master: each child's threading must forget it.
    for r in _fork_threads(procs, tmp_path, {'EXTRA_THREAD': '1'}):
        assert r['hook_ran'] is True
        assert r['main'] and r['started_one'] and r['names'] == ['MainThread'], r


def test_the_installed_command_does_not_load_re(procs, tmp_path):
    # Installers' generated launchers import `re`; ours is shipped as a script (wheel-data/) so
    # that the master and every child do not carry it.
    script = os.path.join(os.path.dirname(sys.executable), 'uwsgidecorators')
    assert os.access(script, os.X_OK), f'no uwsgidecorators command beside {sys.executable}'
    (tmp_path / 'probe_re.py').write_text(
        'import os, sys\n'
        "with open(os.path.join(os.path.dirname(__file__), 'loaded'), 'w') as f:\n"
        "    f.write(' '.join(m for m in ('re', 'uwsgidecorators.cli') if m in sys.modules))\n"
    )
    m = procs.start([script, '--import', 'probe_re', '--processes', '1'], name='ours',
                    env=our_env({'PYTHONPATH': str(tmp_path)}), cwd=str(tmp_path))
    loaded = wait_until(lambda: (tmp_path / 'loaded').exists() and (tmp_path / 'loaded').read_text(), 30,
                        'the module imported', [m])
    assert loaded.split() == ['uwsgidecorators.cli'], f'the master had loaded: {loaded}'
    assert m.stop(signal.SIGTERM) == 0
