#!/usr/bin/env python3
"""Mule benchmark (issue 12): real uWSGI 2.0.21 and ours, INTERLEAVED in one run, on the same
task module (as the vendored harness's bench 7, bench/uwsgi_harness/07_mule.sh, and bench 9's
idle memory).

    python bench/bench_mule.py [--runs N] [--lat-n 500] [--burst-n 20000]

Run by hand (not in CI) with the python of a venv that has ours installed (a release build),
made from the interpreter uWSGI's python3 plugin embeds, Debian's (``/usr/bin/python3 -m venv``):
on another build of CPython the two runtimes run different interpreters (pyenv's is built
without PGO and LTO, and its Python code runs slower), and the bench says so on stderr. Per-run
lines go to stderr; ONE final JSON line goes to stdout: {"bench": "mule", "runs": R, "results":
{target: {metric: {median, min, max, runs}}}, "load": "<uptime before> / <after>",
"interpreters": {"ours": ..., "uwsgi": ...}}.

mule     one master, 1 worker, 1 mule (--mule). A thread of worker 1 (started by @postfork)
         makes LAT_N ``@mulefunc(1)`` calls 2 ms apart, each carrying its time.monotonic(); the
         mule records the one-way latency (p50/p99 in us). Then BURST_N calls as fast as it can
         (uWSGI's @mulefunc drops what does not fit its socket buffer, silently; ours queues):
         calls/s = calls the mule executed / (time of the last one - start of the burst); lost
         = BURST_N - executed. The end marker is sent until the mule has answered.
memory   one master, 1 worker, 1 spooler, 1 mule, idle 3 s after the last spawn, the same
         module imported: PSS (KiB, /proc/PID/smaps_rollup) summed over the master and every
         descendant.

Measured 2026-12-06, session 10 (release build, 64 interleaved runs in four batches, quiet
machine, both on Debian's CPython 3.11.2; medians of the runs, min-max): latency p50 ours 24.8 us
(13.1-53.1) / uWSGI 29.1 us (14.8-58.8), 0.85; p99 ours 83.3 us (35.3-265) / uWSGI 87.5 us
(54.7-191), 0.95; burst ours 424,400 calls/s, 0 lost / uWSGI 256,100 calls/s, 3,739 of 20,000
lost; idle PSS of master + worker + spooler + mule ours 16.1 MiB / uWSGI 21.7 MiB. With
``--lat-n 2000`` (24 runs): p50 0.90, p99 0.97.

uWSGI: ``uwsgi --plugin python3 --master --workers 1 --enable-threads --mule --http-socket
127.0.0.1:PORT --import benchmule`` (Debian's uwsgidecorators); ours: ``uwsgidecorators
--master --processes 1 --mule --import benchmule``. Every process is started in its own session
and stopped by pid (its session's group, at the end of each run); sockets bind loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODULE = '''
import os, threading, time
import uwsgi
from uwsgidecorators import mulefunc, postfork

OUT = os.environ['BENCH_OUT']
MODE = os.environ['BENCH_MODE']
LAT_N = int(os.environ.get('BENCH_LAT_N', '500'))
BURST_N = int(os.environ.get('BENCH_BURST_N', '20000'))
now = time.monotonic
_m = {'lat': [], 'n': 0, 'last': 0.0}


def _put(name, text):
    tmp = os.path.join(OUT, '.' + name)
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, os.path.join(OUT, name))


@mulefunc(1)
def bench_mf(kind, i, t0):
    t1 = now()
    if kind == 'L':
        _m['lat'].append(t1 - t0)
    elif kind == 'T':
        _m['n'] += 1
        _m['last'] = t1
    elif not os.path.exists(os.path.join(OUT, 'mule.recv')):
        _put('mule.recv', '%d %.6f\\n%s\\n' % (_m['n'], _m['last'], '\\n'.join('%.9f' % x for x in _m['lat'])))


def _driver():
    time.sleep(1.0)
    for i in range(LAT_N):
        bench_mf('L', i, now())
        time.sleep(0.002)
    time.sleep(0.2)
    t_start = now()
    for i in range(BURST_N):
        bench_mf('T', i, now())
    t_end = now()
    _put('mule.sent', '%.6f %.6f\\n' % (t_start, t_end))
    for _ in range(300):
        time.sleep(0.1)
        bench_mf('E', 0, now())
        if os.path.exists(os.path.join(OUT, 'mule.recv')):
            break


@postfork
def _start():
    if MODE == 'mule' and uwsgi.worker_id() == 1:
        threading.Thread(target=_driver, daemon=True).start()
    if MODE == 'idle':
        _put('up.%d' % os.getpid(), 'up')
'''


PLUGIN = Path('/usr/lib/uwsgi/plugins/python3_plugin.so')


def interpreters() -> dict[str, str]:
    """The CPython each runtime runs: ours (this python's) and the libpython uWSGI's plugin
    links (from its ELF needed list)."""
    ours = f'{sys.base_prefix} {sys.version.split()[0]}'
    try:
        needed = subprocess.run(['ldd', str(PLUGIN)], capture_output=True, text=True).stdout
        lib = next(w for line in needed.splitlines() for w in line.split() if w.startswith('/') and 'libpython' in w)
    except (OSError, StopIteration):
        return {'ours': ours, 'uwsgi': 'unknown'}
    return {'ours': ours, 'uwsgi': os.path.realpath(lib)}  # /lib is /usr/lib on Debian


def same_interpreter(found: dict[str, str]) -> bool:
    # Debian's libpython lives under /usr/lib; ours is the same build when this python is /usr's
    # of the same minor version.
    minor = f'libpython{sys.version_info[0]}.{sys.version_info[1]}.so'
    return sys.base_prefix == '/usr' and found['uwsgi'].startswith('/usr/lib/') and minor in found['uwsgi']


def free_port() -> int:
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


def ours_bin() -> list[str]:
    script = Path(sys.executable).parent / 'uwsgidecorators'
    return [str(script)] if script.exists() else [sys.executable, '-m', 'uwsgidecorators']


def argv(target: str, d: Path, spooler: bool) -> list[str]:
    if target == 'uwsgi':
        a = ['uwsgi', '--plugin', 'python3', '--master', '--workers', '1', '--enable-threads', '--mule']
        a += ['--http-socket', f'127.0.0.1:{free_port()}', '--pythonpath', str(d), '--import', 'benchmule']
        a += ['--die-on-term']
        if spooler:
            a += ['--spooler', str(d / 'spool')]
        return a
    a = ours_bin() + ['--master', '--processes', '1', '--mule', '--pythonpath', str(d), '--import', 'benchmule']
    a += ['--control-socket', str(d / 'ctl' / 'control')]
    if spooler:
        a += ['--spooler', str(d / 'spool')]
    return a


def descendants(pid: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                st = Path(f'/proc/{p}/stat').read_text()
                kids.setdefault(int(st[st.rindex(')') + 2 :].split()[1]), []).append(int(p))
            except (OSError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def pss_kib(pid: int) -> int:
    for line in Path(f'/proc/{pid}/smaps_rollup').read_text().splitlines():
        if line.startswith('Pss:'):
            return int(line.split()[1])
    return 0


def wait_for(pred: object, timeout: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():  # type: ignore[operator]
            return
        if proc.poll() is not None:
            raise RuntimeError(f'{what}: the instance exited ({proc.returncode})')
        time.sleep(0.05)
    raise RuntimeError(f'timeout waiting for {what}')


def start(target: str, d: Path, mode: str, spooler: bool, lat_n: int, burst_n: int) -> subprocess.Popen[bytes]:
    env = dict(os.environ, BENCH_OUT=str(d), BENCH_MODE=mode, BENCH_LAT_N=str(lat_n), BENCH_BURST_N=str(burst_n))
    if target == 'uwsgi':
        env['PYTHONPATH'] = '/usr/lib/python3/dist-packages'  # Debian's uwsgidecorators
    log = open(d / f'{target}.log', 'wb')
    return subprocess.Popen(argv(target, d, spooler), cwd=d, env=env, stdout=log, stderr=log, start_new_session=True)


def stop(p: subprocess.Popen[bytes]) -> None:
    try:
        os.kill(p.pid, signal.SIGTERM)
        p.wait(15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # the instance's own session: whatever it left
    except ProcessLookupError:
        pass
    p.wait()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def run_mule(target: str, lat_n: int, burst_n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix='bench-mule-') as tmp:
        d = Path(tmp)
        (d / 'benchmule.py').write_text(MODULE)
        p = start(target, d, 'mule', False, lat_n, burst_n)
        try:
            wait_for(lambda: (d / 'mule.recv').exists(), 180, 'mule.recv', p)
        finally:
            stop(p)
        t_start, t_end = map(float, (d / 'mule.sent').read_text().split())
        lines = (d / 'mule.recv').read_text().splitlines()
        n, last = lines[0].split()
        lat = [float(x) * 1e6 for x in lines[1:] if x][50:]  # the first 50 warm up
        return {
            'lat_p50_us': pct(lat, 0.5),
            'lat_p99_us': pct(lat, 0.99),
            'burst_calls_per_s': int(n) / (float(last) - t_start),
            'burst_send_calls_per_s': burst_n / (t_end - t_start),
            'burst_executed': int(n),
            'burst_lost': burst_n - int(n),
        }


def run_memory(target: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix='bench-mem-') as tmp:
        d = Path(tmp)
        (d / 'benchmule.py').write_text(MODULE)
        (d / 'spool').mkdir(mode=0o700)
        p = start(target, d, 'idle', True, 0, 0)
        try:
            # worker and mule run the postfork hook (uWSGI's spooler too); then idle for 3 s
            wait_for(lambda: len(list(d.glob('up.*'))) >= 2 and len(descendants(p.pid)) >= 3, 30, 'children', p)
            time.sleep(3.0)
            pids = [p.pid, *descendants(p.pid)]
            total = sum(pss_kib(x) for x in pids)
            return {'idle_pss_mib': total / 1024, 'processes': len(pids)}
        finally:
            stop(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('--runs', type=int, default=5)
    ap.add_argument('--lat-n', type=int, default=500)
    ap.add_argument('--burst-n', type=int, default=20000)
    args = ap.parse_args()
    found = interpreters()
    if not same_interpreter(found):
        print(
            f'# WARNING: ours runs on {found["ours"]}, uWSGI on {found["uwsgi"]}: different builds of '
            'CPython, so the ratios compare interpreters too (run this with a venv made from /usr/bin/python3)',
            file=sys.stderr,
            flush=True,
        )
    load_before = os.popen('uptime').read().strip()
    results: dict[str, dict[str, list[float]]] = {'uwsgi': {}, 'ours': {}}
    for r in range(args.runs):
        order = ['uwsgi', 'ours'] if r % 2 == 0 else ['ours', 'uwsgi']
        for target in order:
            got = run_mule(target, args.lat_n, args.burst_n)
            got.update(run_memory(target))
            print(f'# run {r} {target} {json.dumps(got)}', file=sys.stderr, flush=True)
            for k, v in got.items():
                results[target].setdefault(k, []).append(v)
    out = {
        t: {k: {'median': statistics.median(v), 'min': min(v), 'max': max(v), 'runs': v} for k, v in m.items()}
        for t, m in results.items()
    }
    print(
        json.dumps(
            {
                'bench': 'mule',
                'runs': args.runs,
                'results': out,
                'load': f'{load_before} / {os.popen("uptime").read().strip()}',
                'interpreters': found,
            }
        )
    )


if __name__ == '__main__':
    main()
