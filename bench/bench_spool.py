#!/usr/bin/env python3
"""Spooler benchmark: the real uWSGI and ours, INTERLEAVED in one run, on the same workloads.

    python3 bench/bench_spool.py [--runs 3] [--only enqueue,durable,drain,rest,queue,latency]
                                 [--ours-python PATH] [--uwsgi-bench DIR]

Run by hand (not in CI). The driver uses the standard library only; "ours" runs in
--ours-python (default: .ci/venv/bin/python, else this interpreter), which must have the
package installed. Per-run lines go to stderr; ONE final JSON line goes to stdout:
{"bench": "spool", "runs": R, "results": {measure: {target: {metric: {median, min, max, runs}}}},
 "ratios": {...ours/uwsgi medians...}, "anchors": {...}, "errors": [...]}.

Measures (uWSGI side reuses the team harness vendored in bench/uwsgi_harness):
  enqueue   `uwsgi.spool(dict)` calls/s, 5 keys x 20 bytes, 20000 calls, spooler present but
            SIGSTOPped, --spooler-quiet. uWSGI: the shared harness's bench 1 (a mule,
            mule_enqueue.py). Ours: the same mule_enqueue.py, unmodified, in a plain process with
            our `uwsgi` shim. Floor: create+write+close (and +rename) of same-size files in one
            dir, from Python, in the same run.
            enqueue_paired: ours and that floor alternating in blocks of 500 calls inside one
            process (bench/enq_paired.py), so disk stalls hit both alike; `ratio_median` is the
            median of the 40 per-pair ratios.
            enqueue_turns: real uWSGI (a mule) and ours (a plain process) taking turns of 500
            calls each (bench/enq_turns.py), for the same reason; `ratio_median` = ours/uWSGI.
  durable   ours with UWSGIDECORATORS_DURABLE=1 (fsync file + dir per enqueue) beside the fsync
            floor (create+write+fsync+close+fsync dir, and the same with a rename).
  drain     20000 no-op tasks, 1 and 2 spooler processes; handler = the shared app_bench.py drain
            handler (one timestamp write per task) in both; throughput = (n-1)/(last-first).
            Also `first_task_after_launch_s`: launch of the master -> first task (startup + scan).
            Floor: bench/drain_floor.c (compiled with cc) on the same prefill, 1 or 2 processes:
            only the system calls any spooler must make per task (open, lock, fstat, read,
            unlink, close). `2*uwsgi/floor` above 1 means twice uWSGI's rate is beyond the floor.
  rest      the same drains after `sync`: the files are committed to disk, as the files of a
            queue that waited a few seconds are (the drain above deletes files created in the
            still-open journal transaction, which costs the kernel far less).
  queue     drain rate (us/task) with 1000 and with 200000 tasks queued, 1 process, both at rest
            (after `sync`, see `rest`).
  latency   enqueue -> handler start, p50/p99: idle spooler (probes 30-70 ms apart), and busy
            spooler (each probe arrives while a LONG task runs; `after_long_us` = how long after
            the long task ended the probe started). uWSGI enqueues from a mule (its writer
            signals idle spoolers only), ours from a plain process.

--load N runs N CPU-bound processes (a pure-Python busy loop each) for the whole run, beside
both targets alike: the "loaded machine" figures (N = the number of cores saturates it). They
are started in their own session and killed by pid at the end; `params.load` and the load
average before and after are in the JSON line.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / 'tests'))
from interop import procs as P  # noqa: E402  (after the sys.path line above)
from interop import spoolfmt  # noqa: E402

ANCHORS = {
    'uwsgi_enqueue_calls_per_s': 3180,
    'uwsgi_drain_tasks_per_s_p1': 14000,
    'uwsgi_drain_tasks_per_s_p2': 14080,
    'uwsgi_latency_idle_p50_us': 493,
    'uwsgi_latency_idle_p99_us': 1070,
    'source': 'bench/uwsgi_harness/BASELINE.md (medians of 5 runs on this kind of machine)',
}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Ctx:
    def __init__(self, args):
        self.args = args
        self.ub = Path(args.uwsgi_bench).resolve()
        sys.path.insert(0, str(self.ub))
        import config as uconfig

        import bench as ubench  # the shared harness (stdlib only)

        self.ubench, self.uconfig = ubench, uconfig
        self.payload = [(k.encode(), v.encode()) for k, v in uconfig.SPOOL_PAYLOAD.items()]
        self.ours_py = args.ours_python
        script = Path(self.ours_py).parent / 'uwsgidecorators'
        self.master = [str(script)] if script.exists() else [self.ours_py, '-m', 'uwsgidecorators']
        self._drain_floor: str | None = None

    def drain_floor(self) -> str:
        """bench/drain_floor.c, compiled once per bench run (needs a C compiler: cc)."""
        if self._drain_floor is None:
            exe = Path(tempfile.mkdtemp(prefix='bench-spool-floor-')) / 'drain_floor'
            subprocess.run(['cc', '-O2', '-o', str(exe), str(HERE / 'drain_floor.c')], check=True)
            self._drain_floor = str(exe)
        return self._drain_floor


# ------------------------------------------------------------------ helpers
def group_for(d: Path) -> P.ProcGroup:
    return P.ProcGroup(d / 'logs')


def ours_env(ctx: Ctx, d: Path, extra: dict) -> dict:
    env = P.our_env(extra)
    env['BENCH_OUT'] = str(d)
    env['PYTHONPATH'] = str(ctx.ub)
    return env


def start_ours(ctx: Ctx, g: P.ProcGroup, args: list, env: dict, name='ours') -> P.Proc:
    return g.start(ctx.master + [str(a) for a in args], name=name, env=env)


def spooler_children(p: P.Proc, want: int, timeout=30) -> list[int]:
    def enough():
        kids = p.children()
        return kids if len(kids) >= want else None

    return P.wait_until(enough, timeout, 'spoolers', [p])


def prefill(ctx: Ctx, sp: Path, n: int) -> None:
    """n task files written the way uWSGI writes them (final name, O_EXCL), payload of bench 1."""
    data = spoolfmt.encode(ctx.payload)
    host, pid = socket.gethostname(), os.getpid()
    t = time.time()
    sec, usec = int(t), int(t % 1 * 1e6)
    for i in range(n):
        name = f'uwsgi_spoolfile_on_{host}_{pid}_{i + 1}_{random.randrange(2**31)}_{sec}_{usec}'
        fd = os.open(sp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, data)
        os.close(fd)


# Measures whose timed part creates files (inodes are allocated while the clock runs).
CREATE_TIMED = ('enqueue', 'durable', 'latency')


class Cleanup:
    """Keeps mass deletions away from the measures that create files.

    When ext4 allocates an inode it skips, one by one, the free inodes whose deletion time is
    recent: 5 s, plus 30 s while their inode-table block is dirty (which a new create in the same
    block makes it again). After a drain or an rmtree of thousands of files, a create in that block
    group can cost 10x the CPU for about 35 s, and an enqueue measure then depends on where its
    directory landed, not on the writer. So the directories of file-creating measures are deleted
    later, just before a drain (whose timed part allocates nothing), and a file-creating measure
    first waits until the last mass deletion is `settle` seconds old.
    """

    def __init__(self, settle_s: float, keep: bool) -> None:
        self.settle_s, self.keep = settle_s, keep
        self.pending: list[Path] = []
        self.last_delete = 0.0

    def add(self, d: Path, deleted_files: bool) -> None:
        if deleted_files:  # a drain: its tasks were deleted while it ran
            self.last_delete = time.monotonic()
        if self.keep:
            return
        if deleted_files:
            shutil.rmtree(d, ignore_errors=True)
        else:
            self.pending.append(d)

    def flush(self) -> None:
        if self.pending:
            for d in self.pending:
                shutil.rmtree(d, ignore_errors=True)
            self.pending.clear()
            self.last_delete = time.monotonic()

    def settle(self) -> None:
        wait = self.last_delete + self.settle_s - time.monotonic()
        if self.last_delete and wait > 0:
            os.sync()
            log(f'# settling {wait:.0f}s after mass deletions (see Cleanup)')
            time.sleep(wait)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100.0 * (len(xs) - 1)))]


# ------------------------------------------------------------------ enqueue
def enqueue_uwsgi(ctx, d):
    r = ctx.ubench.b_spool_enqueue('uwsgi', str(d), 'raw')
    return {'calls_per_s': r['calls_per_s'], 'us_per_call': r['us_per_call'], 'cpu_us_per_call': r['cpu_us_per_call']}


def _ours_enqueue(ctx, d, n, durable):
    sp = d / 'spool'
    sp.mkdir()
    g = group_for(d)
    try:
        m = start_ours(ctx, g, ['--spooler', sp, '--spooler-quiet'], ours_env(ctx, d, {}))
        for pid in spooler_children(m, 1):
            os.kill(pid, signal.SIGSTOP)  # as the shared harness does to uWSGI's spooler
        env = ours_env(
            ctx,
            d,
            {
                'BENCH_VARIANT': 'raw',
                'BENCH_N': str(n),
                'UWSGIDECORATORS_SPOOLERS': str(sp),
                'UWSGIDECORATORS_DURABLE': '1' if durable else '0',
            },
        )
        w = g.start([ctx.ours_py, str(ctx.ub / 'mule_enqueue.py')], name='enqueue', env=env)
        P.wait_until(lambda: (d / 'enq.result').exists(), 600, 'enq.result', [w])
        n_, dt, cpu = (d / 'enq.result').read_text().split()
        files = len(os.listdir(sp))
    finally:
        for p in g.procs:
            for k in p.seen:
                try:
                    os.kill(k, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        g.close()
    n_, dt, cpu = int(n_), float(dt), float(cpu)
    return {'calls_per_s': n_ / dt, 'us_per_call': dt / n_ * 1e6, 'cpu_us_per_call': cpu / n_ * 1e6, 'files': files}


def enqueue_ours(ctx, d):
    return _ours_enqueue(ctx, d, ctx.args.enq_n, False)


def durable_ours(ctx, d):
    return _ours_enqueue(ctx, d, ctx.args.durable_n, True)


def fs_floor(ctx, d, n, fsync):
    """create+write+close (and with a rename) of files of the spool file's size, in one dir."""
    data = spoolfmt.encode(ctx.payload)
    name_len = len(f'uwsgi_spoolfile_on_{socket.gethostname()}_99999_{n}_{2**30}_{1 << 30}_999999')
    out = {}
    for variant in ('create', 'rename'):
        sp = d / ('floor-' + variant)
        sp.mkdir()
        dfd = os.open(sp, os.O_RDONLY | os.O_DIRECTORY)
        t0 = time.perf_counter()
        for i in range(n + 1):
            if i == 1:
                t0 = time.perf_counter()  # first call is the warm-up, as in mule_enqueue.py
            name = f'f{i}'.rjust(name_len, 'x')
            target = os.path.join(sp, name)
            path = os.path.join(sp, '.t' + name) if variant == 'rename' else target
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            if fsync:
                os.fsync(fd)
            os.close(fd)
            if variant == 'rename':
                os.rename(path, target)
            if fsync:
                os.fsync(dfd)
        dt = time.perf_counter() - t0
        os.close(dfd)
        out[f'{variant}_per_s'] = n / dt  # files left for Cleanup: deleting them here slows the next variant
    return out


def enqueue_paired(ctx, d):
    """ours and the create floor alternating in blocks inside one process (bench/enq_paired.py)."""
    env = ours_env(ctx, d, {'ENQ_DIR': str(d / 'paired')})
    out = subprocess.run(
        [ctx.ours_py, str(HERE / 'enq_paired.py')], env=env, capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f'enq_paired.py failed: {out.stderr[-2000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def enqueue_turns(ctx, d):
    """real uWSGI (a mule) and ours (a plain process) taking turns of 500 calls (bench/enq_turns.py)."""
    common = {'TURN_DIR': str(d), 'TURN_BLOCKS': str(ctx.args.turn_blocks), 'TURN_BLOCK': '500'}
    sp_u, sp_o = d / 'spool-uwsgi', d / 'spool-ours'
    sp_u.mkdir()
    sp_o.mkdir()
    g = group_for(d)
    stopped: list[int] = []
    try:
        env = P.uwsgi_env({**common, 'TURN_ME': 'uwsgi', 'TURN_STOP_SPOOLER': '1'})
        u = g.uwsgi(['--spooler', sp_u, '--spooler-quiet', '--mule=%s' % (HERE / 'enq_turns.py')], env=env)
        m = start_ours(ctx, g, ['--spooler', sp_o, '--spooler-quiet'], ours_env(ctx, d, {}))
        for pid in spooler_children(m, 1):
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)
        env = ours_env(ctx, d, {**common, 'TURN_ME': 'ours', 'UWSGIDECORATORS_SPOOLERS': str(sp_o)})
        w = g.start([ctx.ours_py, str(HERE / 'enq_turns.py')], name='enq-turns', env=env)
        both = lambda: (d / 'times.uwsgi').exists() and (d / 'times.ours').exists()  # noqa: E731
        P.wait_until(both, 600, 'enq_turns times', [u, m, w])
        stopped += u.children()
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        g.close()
    tu = [float(x) for x in (d / 'times.uwsgi').read_text().split()]
    to = [float(x) for x in (d / 'times.ours').read_text().split()]
    ratios = [a / b for a, b in zip(tu, to)]  # ours rate / uWSGI rate = uWSGI time / our time
    return {
        'block': 500,
        'blocks': len(ratios),
        'uwsgi_per_s': 500 * len(tu) / sum(tu),
        'ours_per_s': 500 * len(to) / sum(to),
        'ratio_median': statistics.median(ratios),
        'ratio_p25': pct(ratios, 25),
        'ratio_p75': pct(ratios, 75),
    }


def floor_plain(ctx, d):
    return fs_floor(ctx, d, ctx.args.enq_n, False)


def floor_fsync(ctx, d):
    return fs_floor(ctx, d, ctx.args.durable_n, True)


# ------------------------------------------------------------------ drain
def _drain_count(d: Path):
    files = [f for f in os.listdir(d) if f.startswith('drain.')]
    first, last, per = [], [], []
    for f in files:
        lines = (d / f).read_text().split('\n')
        ts = [float(x) for x in lines[1:] if x and not x.startswith('F')]
        if ts:
            first.append(ts[0])
            last.append(ts[-1])
            per.append(len(ts))
    return files, first, last, per


def _drain(ctx, d, target, n, procs_n, at_rest=False):
    sp = d / 'spool'
    sp.mkdir()
    prefill(ctx, sp, n)
    if at_rest:
        os.sync()  # the queue as it is after a few seconds of waiting: committed to disk
    g = group_for(d)
    t_launch = time.monotonic()
    try:
        if target == 'uwsgi':
            spec = {
                'workers': 1,
                'http': ctx.ubench.free_port(),
                'spooler': str(sp),
                'spooler_processes': procs_n,
                'spooler_quiet': True,
            }
            argv = ctx.ubench.targets.argv('uwsgi', spec)
            env = P.uwsgi_env({'BENCH_OUT': str(d), 'BENCH_MODE': 'drain', 'BENCH_VARIANT': 'raw'})
            p = g.start(argv, name='uwsgi', env=env, cwd=str(ctx.ub))
        else:
            args = [
                '--spooler-processes',
                procs_n,
                '--spooler',
                sp,
                '--spooler-quiet',
                '--spooler-import',
                ctx.ub / 'app_bench.py',
            ]
            p = start_ours(ctx, g, args, ours_env(ctx, d, {'BENCH_MODE': 'drain', 'BENCH_VARIANT': 'raw'}))

        def done():
            _f, _a, _b, per = _drain_count(d)
            return sum(per) >= n

        P.wait_until(done, max(120, n / 1000), f'drain of {n}', [p], interval=0.1)
        _files, first, last, per = _drain_count(d)
        left = len(spoolfmt.runnable_files(str(sp)))
    finally:
        g.close()
    dt = max(last) - min(first)
    return {
        'tasks_per_s': (n - 1) / dt,
        'us_per_task': dt / (n - 1) * 1e6,
        'drain_s': dt,
        'procs_used': len(per),
        'share_max': max(per) / n,
        'files_left': left,
        'first_task_after_launch_s': min(first) - t_launch,
    }


def _drain_floor(ctx, d, procs_n, at_rest=False):
    """bench/drain_floor.c on the same prefill: the kernel's own cost of claiming and deleting."""
    sp = d / 'spool'
    sp.mkdir()
    prefill(ctx, sp, ctx.args.drain_n)
    if at_rest:
        os.sync()
    out = subprocess.run([ctx.drain_floor(), str(sp), str(procs_n)], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f'drain_floor failed: {out.stderr[-2000:]}')
    r = json.loads(out.stdout)
    left = len(os.listdir(sp))
    return {'tasks_per_s': r['tasks_per_s'], 'us_per_task': 1e6 / r['tasks_per_s'], 'files_left': left}


def _drain_or_floor(ctx, d, target, procs_n, at_rest=False):
    if target == 'floor':
        return _drain_floor(ctx, d, procs_n, at_rest)
    return _drain(ctx, d, target, ctx.args.drain_n, procs_n, at_rest)


def drain_p1(ctx, d, target):
    return _drain_or_floor(ctx, d, target, 1)


def drain_p2(ctx, d, target):
    return _drain_or_floor(ctx, d, target, 2)


def drain_rest_p1(ctx, d, target):
    return _drain_or_floor(ctx, d, target, 1, at_rest=True)


def drain_rest_p2(ctx, d, target):
    return _drain_or_floor(ctx, d, target, 2, at_rest=True)


def queue_small(ctx, d, target):
    return _drain(ctx, d, target, 1000, 1, at_rest=True)


def queue_big(ctx, d, target):
    # At rest like the small one: the 200k prefill takes long enough for the disk to commit part
    # of it, so without a sync the two would differ in the kernel's work, not in the queue size.
    return _drain(ctx, d, target, ctx.args.big_n, 1, at_rest=True)


# ------------------------------------------------------------------ latency
def _latency(ctx, d, target, mode):
    sp = d / 'spool'
    sp.mkdir()
    n = ctx.args.lat_n if mode == 'idle' else ctx.args.busy_n
    freq = str(ctx.args.busy_freq if mode == 'busy' else 30)
    env_common = {'LAT_OUT': str(d), 'LAT_MODE': mode, 'LAT_N': str(n), 'LAT_LONG': str(ctx.args.long)}
    g = group_for(d)
    try:
        common = ['--spooler', sp, '--spooler-import', HERE / 'lat_spooler.py', '--spooler-frequency', freq]
        if target == 'uwsgi':
            env = P.uwsgi_env({**env_common, 'LAT_FOREVER': '1'})
            procs = [g.uwsgi(common + ['--mule=%s' % (HERE / 'lat_enqueue.py')], env=env)]
        else:
            m = start_ours(ctx, g, common, ours_env(ctx, d, env_common))
            w = g.start(
                [ctx.ours_py, str(HERE / 'lat_enqueue.py')],
                name='lat-enqueue',
                env=ours_env(ctx, d, {**env_common, 'UWSGIDECORATORS_SPOOLERS': str(sp)}),
            )
            procs = [m]
            _ = w
        cap = n * 0.1 + 60 if mode == 'idle' else n * (float(freq) + ctx.args.long + 2) + 60
        P.wait_until(lambda: (d / 'lat.sent').exists(), cap, 'latency run', procs, interval=0.1)
        rows = [line.split() for line in P.read_lines(d / 'lat.txt')]
    finally:
        g.close()
    probes = {r[1]: (float(r[2]), float(r[3])) for r in rows if r[0] == 'probe'}
    longs = {r[1]: (float(r[2]), float(r[3])) for r in rows if r[0] == 'long'}
    lat = [t1 - t0 for t0, t1 in probes.values()]
    out = {'probes_done': len(lat)}
    if lat:
        out.update({'p50_us': pct(lat, 50) * 1e6, 'p99_us': pct(lat, 99) * 1e6, 'max_us': max(lat) * 1e6})
    if mode == 'busy':
        after = [probes[i][1] - longs[i][1] for i in probes if i in longs]
        if after:
            out.update({'after_long_p50_us': pct(after, 50) * 1e6, 'after_long_max_us': max(after) * 1e6})
    return out


def latency_idle(ctx, d, target):
    return _latency(ctx, d, target, 'idle')


def latency_busy(ctx, d, target):
    return _latency(ctx, d, target, 'busy')


# ------------------------------------------------------------------ main
def _call_with_target(fn, target, ctx, d):
    return fn(ctx, d, target)


def plan(ctx):
    """[(group, measure, target, fn)] in the order one run executes them (targets interleaved)."""
    a = ctx.args
    steps = []
    if 'enqueue' in a.only:
        steps += [
            ('enqueue', 'enqueue', 'uwsgi', enqueue_uwsgi),
            ('enqueue', 'enqueue', 'ours', enqueue_ours),
            ('enqueue', 'enqueue', 'floor', floor_plain),
            ('enqueue', 'enqueue_paired', 'ours', enqueue_paired),
            ('enqueue', 'enqueue_turns', 'ours', enqueue_turns),
        ]
    if 'durable' in a.only:
        steps += [
            ('durable', 'enqueue_durable', 'ours', durable_ours),
            ('durable', 'enqueue_durable', 'floor_fsync', floor_fsync),
        ]
    for grp, meas, fn in (
        ('drain', 'drain_p1', drain_p1),
        ('drain', 'drain_p2', drain_p2),
        ('rest', 'drain_rest_p1', drain_rest_p1),
        ('rest', 'drain_rest_p2', drain_rest_p2),
        ('queue', 'queue_1000', queue_small),
        ('queue', 'queue_big', queue_big),
        ('latency', 'latency_idle', latency_idle),
        ('latency', 'latency_busy', latency_busy),
    ):
        if grp in a.only or meas in a.only:  # a group (`latency`) or one of its measures (`latency_idle`)
            targets = ('uwsgi', 'ours', 'floor') if meas.startswith('drain_') else ('uwsgi', 'ours')
            for t in targets:
                steps.append((grp, meas, t, functools.partial(_call_with_target, fn, t)))
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--only', default='enqueue,durable,drain,rest,queue,latency')
    venv_py = REPO / '.ci' / 'venv' / 'bin' / 'python'
    ap.add_argument('--ours-python', default=str(venv_py) if venv_py.exists() else sys.executable)
    ap.add_argument('--uwsgi-bench', default=str(HERE / 'uwsgi_harness'))
    ap.add_argument('--enq-n', type=int, default=20000)
    ap.add_argument('--durable-n', type=int, default=2000)
    ap.add_argument('--drain-n', type=int, default=20000)
    ap.add_argument('--big-n', type=int, default=200000)
    ap.add_argument('--turn-blocks', type=int, default=40, help='turns of 500 calls each side (enqueue_turns)')
    ap.add_argument('--lat-n', type=int, default=200)
    ap.add_argument('--busy-n', type=int, default=10)
    ap.add_argument('--busy-freq', type=float, default=5, help='--spooler-frequency of the busy latency runs')
    ap.add_argument('--long', type=float, default=0.2, help='seconds of the long task (busy latency)')
    ap.add_argument('--keep', action='store_true', help='keep the temp dirs')
    ap.add_argument(
        '--settle',
        type=float,
        default=40,
        help='seconds between a mass deletion and an enqueue/latency step (see Cleanup)',
    )
    ap.add_argument('--targets', default='uwsgi,ours,floor,floor_fsync', help='subset of targets to run')
    ap.add_argument('--load', type=int, default=0, help='CPU-bound busy-loop processes running beside the run')
    args = ap.parse_args()
    hogs = [
        subprocess.Popen([sys.executable, '-c', 'while True: pass'], start_new_session=True)
        for _ in range(args.load)
    ]
    try:
        run_all(args)
    finally:
        for h in hogs:
            h.kill()
            h.wait()


def run_all(args):
    load_before = os.getloadavg()
    args.only = set(args.only.split(','))
    os.environ['BENCH_ENQ_N'] = str(args.enq_n)  # read by the shared config at import
    ctx = Ctx(args)
    ctx.uconfig.ENQ_N = args.enq_n
    raw, errors = {}, []
    t_all = time.time()
    cleanup = Cleanup(args.settle, keep=args.keep)
    for run in range(1, args.runs + 1):
        for grp, meas, target, fn in plan(ctx):
            if target not in args.targets.split(','):
                continue
            creates = grp in CREATE_TIMED
            if creates:
                cleanup.settle()
            else:
                cleanup.flush()  # a drain's timing does not allocate inodes: delete the backlog now
            d = Path(tempfile.mkdtemp(prefix=f'bench-spool-{meas}-{target}-', dir=os.environ.get('BENCH_TMP')))
            d = Path(os.path.realpath(d))
            t0 = time.time()
            try:
                r = fn(ctx, d)
                raw.setdefault(meas, {}).setdefault(target, []).append(r)
                log(f'# run {run} {meas:<15} {target:<11} {time.time() - t0:5.1f}s {json.dumps(r, sort_keys=True)}')
            except Exception as e:
                errors.append(f'{meas}/{target} run {run}: {str(e)[:2000]}')
                log('# ERROR', errors[-1])
            finally:
                cleanup.add(d, deleted_files=not creates)
    cleanup.flush()
    results = {}
    for meas, per_t in raw.items():
        for target, runs in per_t.items():
            agg = {}
            for k in runs[0]:
                vals = [r.get(k) for r in runs if isinstance(r.get(k), (int, float))]
                if vals:
                    agg[k] = {
                        'median': statistics.median(vals),
                        'min': min(vals),
                        'max': max(vals),
                        'runs': [round(v, 3) for v in vals],
                    }
            results.setdefault(meas, {})[target] = agg
    ratios = {}

    def med(meas, target, key):
        try:
            return results[meas][target][key]['median']
        except KeyError:
            return None

    for meas, key in (
        ('enqueue', 'calls_per_s'),
        ('drain_p1', 'tasks_per_s'),
        ('drain_p2', 'tasks_per_s'),
        ('drain_rest_p1', 'tasks_per_s'),
        ('drain_rest_p2', 'tasks_per_s'),
        ('queue_1000', 'us_per_task'),
        ('queue_big', 'us_per_task'),
        ('latency_idle', 'p50_us'),
        ('latency_idle', 'p99_us'),
        ('latency_busy', 'p50_us'),
        ('latency_busy', 'p99_us'),
    ):
        a, b = med(meas, 'ours', key), med(meas, 'uwsgi', key)
        if a and b:
            ratios[f'{meas}.{key} ours/uwsgi'] = round(a / b, 3)
    a = med('enqueue_turns', 'ours', 'ratio_median')
    if a:
        ratios['enqueue_turns ours/uwsgi (median of turn pairs)'] = round(a, 3)
    for key in ('create_per_s', 'rename_per_s'):
        a, b = med('enqueue', 'ours', 'calls_per_s'), med('enqueue', 'floor', key)
        if a and b:
            ratios[f'enqueue.calls_per_s ours/floor_{key}'] = round(a / b, 3)
        a, b = med('enqueue_durable', 'ours', 'calls_per_s'), med('enqueue_durable', 'floor_fsync', key)
        if a and b:
            ratios[f'enqueue_durable.calls_per_s ours/fsync_floor_{key}'] = round(a / b, 3)
    for meas in ('drain_p1', 'drain_p2', 'drain_rest_p1', 'drain_rest_p2'):
        a, b, f = med(meas, 'ours', 'tasks_per_s'), med(meas, 'uwsgi', 'tasks_per_s'), med(meas, 'floor', 'tasks_per_s')
        if a and f:
            ratios[f'{meas}.tasks_per_s ours/floor'] = round(a / f, 3)
        if b and f:
            # Above 1: twice uWSGI's rate is faster than the kernel's own claim-and-delete floor.
            ratios[f'{meas}.tasks_per_s 2*uwsgi/floor'] = round(2 * b / f, 3)
    a, b = med('queue_big', 'ours', 'us_per_task'), med('queue_1000', 'ours', 'us_per_task')
    if a and b:
        ratios['ours queue_big/queue_1000 us_per_task'] = round(a / b, 3)
    a, b = med('queue_big', 'uwsgi', 'us_per_task'), med('queue_1000', 'uwsgi', 'us_per_task')
    if a and b:
        ratios['uwsgi queue_big/queue_1000 us_per_task'] = round(a / b, 3)
    summary = {
        'bench': 'spool',
        'runs': args.runs,
        'seconds': round(time.time() - t_all, 1),
        'results': results,
        'ratios': ratios,
        'anchors': ANCHORS,
        'errors': errors,
        'params': {k: v for k, v in vars(args).items() if k != 'only'} | {'only': sorted(args.only)},
        'loadavg_before_after': [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(summary, sort_keys=True))


if __name__ == '__main__':
    main()
