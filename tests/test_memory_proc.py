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

from interop import sigapp
from interop.procs import pid_alive, wait_until

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
