"""uwsgi.lock()+unlock() pairs/s: real uWSGI, ours and posix_ipc's semaphore, interleaved in one run.

    python bench/bench_locks.py [--rounds N] [--duration S] [--peer-python PY]

Each round runs, one after the other:

* uWSGI 2.0.21: the vendored harness's lock bench (bench/uwsgi_harness/06_lock.sh: two mules
  meet at a file barrier; mule 1 alone for S seconds, then both on lock 0 for S seconds; calls
  in batches of 1,000 between clock reads);
* ours: the same schedule and batches, in the two workers of our master (``uwsgi.lock`` from
  the shim, the process-shared lock in the master's region);
* posix_ipc.Semaphore: the peers bench (bench/peers/bench_locks.py, one process, then 2 forked
  processes), run with ``--peer-python`` (a venv that has posix_ipc; skipped without one).

Prints per-round lines, then medians and the ratios ours/uWSGI and ours/posix_ipc, for one
process (uncontended) and two contending processes (total pairs/s). Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
HARNESS = HERE / 'uwsgi_harness'
PEERS = HERE / 'peers'

OURS_MODULE = textwrap.dedent(
    """
    import os, threading, time
    import uwsgi
    from uwsgidecorators import postfork

    OUT = os.environ['BENCH_OUT']
    D = float(os.environ['BENCH_LOCK_DURATION'])
    B = 1000
    now = time.monotonic

    def run(fn, start):
        while now() < start:
            pass
        n, end = 0, start + D
        while now() < end:
            for _ in range(B):
                fn()
            n += B
        return n / (now() - start)

    def main(me):
        open(os.path.join(OUT, 'ready.%d' % me), 'w').close()
        go = os.path.join(OUT, 'go')
        while not os.path.exists(go):
            time.sleep(0.001)
        T = float(open(go).read())
        lock, unlock = uwsgi.lock, uwsgi.unlock

        def pair():
            lock()
            unlock()

        res = {}
        if me == 1:
            res['ref'] = run(uwsgi.worker_id, T)
            res['solo'] = run(pair, T + D + 0.2)
        res['duo'] = run(pair, T + 2 * D + 0.4)
        with open(os.path.join(OUT, '.l%d' % me), 'w') as f:
            f.write(repr(res))
        os.rename(os.path.join(OUT, '.l%d' % me), os.path.join(OUT, 'lock.%d' % me))

    @postfork
    def start():
        threading.Thread(target=main, args=(uwsgi.worker_id(),), daemon=True).start()
    """
)


def wait_for(pred, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise RuntimeError(f'timeout waiting for {what}')
        time.sleep(0.01)


def run_uwsgi(duration: float) -> dict:
    env = dict(os.environ, BENCH_LOCK_DURATION=str(duration), BENCH_RUNS='1')
    p = subprocess.run(
        ['python3', 'bench.py', 'lock', '--runs', '1'], cwd=HARNESS, env=env, capture_output=True, text=True, timeout=300
    )
    for line in p.stderr.splitlines():
        if line.startswith('# run 1 uwsgi'):
            r = json.loads(line.split(' ', 5)[5])
            return {'solo': r['uncontended_pairs_per_s'], 'duo': r['contended_total_pairs_per_s']}
    raise RuntimeError(f'uWSGI lock bench failed:\n{p.stderr[-3000:]}')


def run_ours(duration: float) -> dict:
    d = Path(tempfile.mkdtemp(prefix='bench-locks-ours-'))
    try:
        (d / 'benchlock.py').write_text(OURS_MODULE)
        env = dict(os.environ, BENCH_OUT=str(d), BENCH_LOCK_DURATION=str(duration))
        for k in ('UWSGIDECORATORS_CONTROL', 'UWSGIDECORATORS_REGION', 'UWSGIDECORATORS_SPOOLERS'):
            env.pop(k, None)
        log = open(d / 'master.log', 'w')
        m = subprocess.Popen(
            [sys.executable, '-m', 'uwsgidecorators', '--processes', '2', '--import', 'benchlock'],
            cwd=d,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(lambda: (d / 'ready.1').exists() and (d / 'ready.2').exists(), 30, 'our workers')
            (d / '.go').write_text('%.6f' % (time.monotonic() + 0.3))
            os.rename(d / '.go', d / 'go')
            wait_for(lambda: (d / 'lock.1').exists() and (d / 'lock.2').exists(), 3 * duration + 30, 'our results')
        finally:
            m.send_signal(signal.SIGTERM)
            m.wait(30)
            log.close()
        a = eval((d / 'lock.1').read_text())
        b = eval((d / 'lock.2').read_text())
        return {'solo': a['solo'], 'duo': a['duo'] + b['duo']}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_posix_ipc(py: str, duration: float) -> dict:
    env = dict(os.environ, BENCH_REPEATS='1', BENCH_SCALE=str(duration / 2.0))
    p = subprocess.run(
        [py, 'bench_locks.py', '--only', 'posix_ipc.Semaphore'],
        cwd=PEERS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    res = json.loads(p.stdout.strip().splitlines()[-1])['results']['posix_ipc.Semaphore']

    def med(v):
        return v['median'] if isinstance(v, dict) else v

    return {'solo': med(res['uncontended_pairs_per_s']), 'duo': med(res['contended_total_pairs_per_s'])}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--duration', type=float, default=2.0, help='seconds per phase')
    ap.add_argument('--peer-python', default=os.environ.get('BENCH_PEER_PYTHON'))
    a = ap.parse_args()
    runners = {'uwsgi': lambda: run_uwsgi(a.duration), 'ours': lambda: run_ours(a.duration)}
    if a.peer_python:
        runners['posix_ipc'] = lambda: run_posix_ipc(a.peer_python, a.duration)
    raw: dict[str, list[dict]] = {k: [] for k in runners}
    load = os.getloadavg()
    for rnd in range(a.rounds):
        for name, fn in runners.items():
            r = fn()
            raw[name].append(r)
            print(f'# round {rnd + 1} {name:9s} 1 proc {r["solo"] / 1e6:6.2f} M/s   2 procs {r["duo"] / 1e6:6.2f} M/s',
                  file=sys.stderr, flush=True)
    med = {k: {m: statistics.median(r[m] for r in v) for m in ('solo', 'duo')} for k, v in raw.items()}
    print(f'\nlock()+unlock() pairs/s, median of {a.rounds} interleaved rounds (load before: {load[0]:.2f})')
    print(f'{"":12s}{"1 process":>14s}{"2 processes":>14s}')
    for k, v in med.items():
        print(f'{k:12s}{v["solo"] / 1e6:12.2f} M{v["duo"] / 1e6:12.2f} M')
    ratios = {}
    for other in ('uwsgi', 'posix_ipc'):
        if other in med:
            ratios[f'ours/{other}'] = {m: med['ours'][m] / med[other][m] for m in ('solo', 'duo')}
            print(f'{"ours/" + other:12s}{ratios[f"ours/{other}"]["solo"]:12.2f} x{ratios[f"ours/{other}"]["duo"]:12.2f} x')
    print(json.dumps({'bench': 'locks', 'median': med, 'ratios': ratios, 'runs': raw, 'loadavg_before': load}))


if __name__ == '__main__':
    main()
