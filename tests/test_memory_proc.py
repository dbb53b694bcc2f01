"""What idle processes of our master carry (bench/bench_memory.py measures the memory itself):
modules only some roles need are not loaded at all until used, and the children still stop when
the master is killed (their parent-death signal is set through the core, not through ctypes)."""

from __future__ import annotations

import json
import os
import signal
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
        unwanted = {'ctypes', 'tempfile', 'shutil', 'random', 'bz2', 'lzma', 'pickle'} & loaded
        assert not unwanted, f"{'spooler' if rec['spooler'] else 'worker'} loaded {sorted(unwanted)}"
    assert m.stop(signal.SIGTERM) == 0


def test_children_stop_when_the_master_is_killed(procs, tmp_path):
    m, out = sigapp.start(procs, tmp_path, BODY, workers=1, spooler=True)
    wait_until(lambda: len(sigapp.events(out, 'modules')) >= 2, 30, 'the worker and the spooler', [m])
    children = [r['pid'] for r in sigapp.events(out, 'modules')]
    os.kill(m.pid, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p) for p in children), 20, 'the orphaned children to stop')
    assert json.dumps(children)  # the pids were real records
