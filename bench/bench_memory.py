#!/usr/bin/env python3
"""Idle memory: real uWSGI and ours, the same shape (master + 1 worker + 1 spooler), INTERLEAVED.

    python3 bench/bench_memory.py [--runs 3] [--settle 3] [--ours-python PATH] [--keep] [--mule]

`--mule` adds one plain mule on both sides (uWSGI `--mule`, ours `--mule`).

Run by hand (not in CI). Each run starts one instance, waits until its tree has its three
processes and the app was imported in the worker and the spooler, lets it sit idle `--settle`
seconds, then sums Pss (and Rss, Private) over `/proc/<pid>/smaps_rollup` of every process of
the tree, then stops it by pid. The target order alternates between runs.

Both run the same app module: by default (`--app mine`) one written into the run dir, which
imports `uwsgidecorators`, defines a `@spool` task and a WSGI `application`, and writes a marker
file per process after fork; `--app bench` runs the vendored harness's (bench/uwsgi_harness) `app_bench.py` in its `mem`
mode instead (`bench/uwsgi_harness/`, bench 9: a `@spool` task, a `@postfork`, a `@timer(1)`).
uWSGI: `uwsgi --plugin python3 --master --workers 1 --spooler DIR --spooler-quiet --socket
<unix socket> --module app` (a worker needs a socket to start; a Unix one, never served).
Ours: `uwsgidecorators --master --processes 1 --spooler DIR --spooler-quiet --import app`.

stderr: one `# run ...` line per measurement; stdout: ONE JSON line with per-target medians
(KiB), per-process figures of the last run, and `ratio_pss` (ours / uWSGI, by the medians).

PSS divides a page shared with processes OUTSIDE the tree too: ours' interpreter and libraries
are shared with every other Python of the machine (other sessions' tests), uWSGI's libpython
with fewer, so PSS moves with the machine's load. `tree_kib` (as root) counts each physical page
mapped by the tree once, whoever else maps it (from /proc/<pid>/pagemap): the memory the
instance holds on its own, steady whatever else runs. `ratio_tree` compares that.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGE = os.sysconf('SC_PAGE_SIZE')
REPO = HERE.parent
sys.path.insert(0, str(REPO / 'tests'))
from interop import procs as P  # noqa: E402  (after the sys.path line above)

APP = '''\
import os
from uwsgidecorators import postfork, spool
import uwsgi

OUT = os.environ['MEM_OUT']


@spool
def task(arguments):
    return uwsgi.SPOOL_OK


@postfork
def _mark():
    open(os.path.join(OUT, 'up.%d' % os.getpid()), 'w').close()


def application(env, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
'''


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def rollup(pid: int) -> dict[str, int]:
    """KiB figures of /proc/<pid>/smaps_rollup."""
    out: dict[str, int] = {}
    with open(f'/proc/{pid}/smaps_rollup') as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == 'kB':
                out[parts[0].rstrip(':')] = int(parts[1])
    out['Private'] = out.get('Private_Clean', 0) + out.get('Private_Dirty', 0)
    return out


def frames(pid: int) -> set[int] | None:
    """The physical frames of every present page of `pid` (needs root: /proc/<pid>/pagemap)."""
    out: set[int] = set()
    try:
        with open(f'/proc/{pid}/maps') as maps, open(f'/proc/{pid}/pagemap', 'rb') as pm:
            for line in maps:
                lo, hi = (int(x, 16) for x in line.split()[0].split('-'))
                if line.rstrip().endswith('[vsyscall]'):
                    continue
                pm.seek(lo // PAGE * 8)
                data = pm.read((hi - lo) // PAGE * 8)
                for (e,) in struct.iter_unpack('<Q', data):
                    if e >> 63 & 1:
                        out.add(e & ((1 << 55) - 1))
    except OSError:
        return None
    if out == {0}:
        return None  # PFNs hidden (not root)
    return out


def threads(pid: int) -> int:
    return len(os.listdir(f'/proc/{pid}/task'))


def measure(target: str, d: Path, args: argparse.Namespace) -> dict[str, Any]:
    sp = d / 'spool'
    sp.mkdir()
    if args.app == 'bench':
        app_dir, module, mark = Path(args.uwsgi_bench).resolve(), 'app_bench', 'postfork.w1'
        extra = {'BENCH_OUT': str(d), 'BENCH_MODE': 'mem'}
    else:
        (d / 'app_mem.py').write_text(APP)
        app_dir, module, mark = d, 'app_mem', 'up.'
        extra = {'MEM_OUT': str(d)}
    g = P.ProcGroup(d / 'logs')
    try:
        if target == 'uwsgi':
            env = P.uwsgi_env(extra)
            argv = [P.uwsgi_bin(), '--plugin', 'python3', '--master', '--die-on-term', '--workers', '1',
                    '--spooler', str(sp), '--spooler-quiet', '--socket', str(d / 'http.sock'),
                    '--pythonpath', str(app_dir), '--chdir', str(app_dir), '--module', module]
            argv += ['--mule'] * int(args.mule)
            p = g.start(argv, name='uwsgi', env=env, cwd=str(app_dir))
        else:
            env = P.our_env({**extra, 'PYTHONPATH': str(app_dir)})
            python = target.partition('=')[2] or args.ours_python
            script = Path(python).parent / 'uwsgidecorators'
            master = [str(script)] if script.exists() else [python, '-m', 'uwsgidecorators']
            argv = master + ['--master', '--processes', '1', '--spooler', str(sp), '--spooler-quiet',
                             '--import', module]
            argv += ['--mule'] * int(args.mule)
            p = g.start(argv, name='ours', env=env, cwd=str(app_dir))

        def ready() -> list[int] | None:
            kids = P.descendants(p.pid)
            ups = [f for f in os.listdir(d) if f.startswith(mark)]
            # uWSGI's spooler runs no postfork hook: its tree of 3 and the worker's mark suffice.
            return kids if len(kids) >= 2 + int(args.mule) and len(ups) >= 1 else None

        kids = P.wait_until(ready, 60, 'master + worker + spooler (+ mules)', [p])
        time.sleep(args.settle)
        pids = [p.pid] + sorted(P.descendants(p.pid))
        per = {pid: rollup(pid) for pid in pids}
        tree: set[int] | None = set()
        for pid in pids:
            f = frames(pid)
            tree = None if f is None or tree is None else tree | f
        names = {pid: P.cmdline(pid)[:60] for pid in pids}
        nthreads = {pid: threads(pid) for pid in pids}
    finally:
        g.close()
    assert len(kids) >= 2
    r: dict[str, Any] = {'processes': len(pids), 'tree_kib': len(tree) * PAGE // 1024 if tree is not None else 0}
    for k in ('Pss', 'Rss', 'Private'):
        r[k.lower() + '_kib'] = sum(v.get(k, 0) for v in per.values())
    r['per_process'] = [
        {'pid': pid, 'cmd': names[pid], 'threads': nthreads[pid],
         **{k.lower() + '_kib': per[pid].get(k, 0) for k in ('Pss', 'Rss', 'Private', 'Anonymous')}}
        for pid in pids
    ]
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--settle', type=float, default=3.0, help='idle seconds before measuring')
    ap.add_argument(
        '--targets', default='uwsgi,ours', help='uwsgi, ours, or ours=PYTHON (several builds of ours in one run)'
    )
    dflt = REPO / '.ci' / 'venv' / 'bin' / 'python'
    ap.add_argument('--ours-python', default=str(dflt) if dflt.exists() else sys.executable)
    ap.add_argument('--keep', action='store_true', help='keep the run dirs')
    ap.add_argument('--app', choices=('mine', 'bench'), default='mine')
    ap.add_argument('--mule', action='store_true', help='one plain mule (--mule) on both sides')
    ap.add_argument('--uwsgi-bench', default=str(HERE / 'uwsgi_harness'))
    args = ap.parse_args()
    targets = args.targets.split(',')
    res: dict[str, list[dict[str, Any]]] = {t: [] for t in targets}
    errors: list[str] = []
    for run in range(args.runs):
        order = targets if run % 2 == 0 else list(reversed(targets))
        for t in order:
            d = Path(tempfile.mkdtemp(prefix=f'bench-mem-{t.partition("=")[0]}-'))
            try:
                r = measure(t, d, args)
                res[t].append(r)
                log(f'# run {run} {t}: pss {r["pss_kib"]} KiB, tree {r["tree_kib"]} KiB, rss {r["rss_kib"]} KiB, private {r["private_kib"]} '
                    f'KiB, {r["processes"]} processes, threads {[x["threads"] for x in r["per_process"]]}, '
                    f'pss per process {[x["pss_kib"] for x in r["per_process"]]}')
            except Exception as e:  # keep the other runs
                errors.append(f'{t} run {run}: {e!r}')
                log(f'# run {run} {t}: ERROR {e!r}')
            finally:
                if not args.keep:
                    shutil.rmtree(d, ignore_errors=True)
    out: dict[str, Any] = {'bench': 'memory', 'runs': args.runs, 'results': {}, 'errors': errors,
                 'config': {'settle_s': args.settle, 'ours_python': args.ours_python, 'app': args.app,
                            'mules': args.mule}}
    for t, rs in res.items():
        if not rs:
            continue
        out['results'][t] = {
            k: {'median': statistics.median(r[k] for r in rs), 'min': min(r[k] for r in rs),
                'max': max(r[k] for r in rs), 'runs': [r[k] for r in rs]}
            for k in ('pss_kib', 'tree_kib', 'rss_kib', 'private_kib')
        }
        out['results'][t]['last_run_per_process'] = rs[-1]['per_process']
    if res.get('uwsgi'):
        u = out['results']['uwsgi']['pss_kib']['median']
        for t in targets:
            if t.startswith('ours') and res.get(t):
                o = out['results'][t]['pss_kib']['median']
                key = 'ratio_pss' if t == 'ours' else f'ratio_pss {t}'
                out[key] = round(o / u, 3)
                log(f'# PSS median: uWSGI {u / 1024:.1f} MiB, {t} {o / 1024:.1f} MiB, ratio {o / u:.3f}')
                ut, ot = out['results']['uwsgi']['tree_kib']['median'], out['results'][t]['tree_kib']['median']
                if ut and ot:
                    out[key.replace('pss', 'tree')] = round(ot / ut, 3)
                    log(f'# tree median: uWSGI {ut / 1024:.1f} MiB, {t} {ot / 1024:.1f} MiB, ratio {ot / ut:.3f}')
    print(json.dumps(out))


if __name__ == '__main__':
    main()
