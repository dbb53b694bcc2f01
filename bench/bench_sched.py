#!/usr/bin/env python3
"""Scheduling benchmark (issue 3): cron, timers, signals, file monitors. Ours and the anchors,
INTERLEAVED in one run, on the same workloads.

    python bench/bench_sched.py [--parts cron,timer,signal,filemon] [--runs N] [--quick]
                                [--duration S] [--timer-mode together|sequential] [--keep]

Run by hand (not in CI), with a python that has our package (the maturin develop venv) and,
for part cron, croniter-rs / cronsim / croniter (see bench/sched_README.md). Per-run lines go to
stderr; ONE final JSON line goes to stdout:
{"bench": "sched", "runs": R, "results": {part: {target: {metric: {median,min,max,runs}}}},
 "ratios": {...}, "targets_met": {...}, "anchors": {...}, "errors": [...]}.

cron     next-fire computations per second, from Python, on the peers' CRON_SPECS with their
         method (bench/peers/bench_cron.py: kept iterator of CRON_NEXT_ITER_N nexts
         from CRON_BASE, parse+one next CRON_NEXT_COLD_N times, match every 131st minute of
         2025). The peers' adapters are imported for croniter-rs, cronsim and croniter; ours:
         `_core.CronSpec(s).next_fire(t, 'UTC')` chained on unix seconds (`next_fire`),
         the same returning a naive datetime as the adapters do (`next_fire_dt`),
         `.next_after(*tuple)` chained on civil tuples (`next_after`) and next_fire in
         Europe/Berlin (`next_fire_berlin`). The kept-iterator loop is repeated on fresh
         iterators until >= 50 ms were timed (the peers time one 1500-next loop, which is
         under 1 ms for the fast ones). Order of targets rotates per spec and run.
         First 300 fires of every spec are checked equal to croniter-rs's.
timer    one master, 2 workers. Ours: @timer(1) -> worker1 and @timer(0.1) -> worker2;
         uWSGI: @timer(1) -> worker1 (integer seconds only). Floor: a forked plain Python
         process sleeping to absolute deadlines of both grids (the machine's wake-up noise). Handler appends
         time.monotonic() per tick; --duration s (default 30). Per period: ticks, interval
         mean/stdev, lateness p50/p99/max = tick - ideal grid time, the grid being
         origin + k*period with the origin at the earliest (tick - k*period), so lateness >= 0;
         drift = least-squares slope of (tick - k*period) in ms per minute; first tick after
         registration; missed = ideal count - ticks. --timer-mode together (default): the floor,
         uWSGI and ours tick in the same window, so the machine's stalls hit all of them;
         sequential: one window per target, rotated between runs.
signal   as the shared harness's bench 5 (BASELINE.md): 2 workers; a thread in worker 1 records
         t0 and raises 21 (target worker2), worker 2's handler records t1 and raises 22
         (target worker1), whose handler sets an Event. SIG_N round trips 1 ms apart, first
         50 dropped: one-way t1-t0 and round trip p50/p99.
filemon  @filemon(path, target='worker1') on a file; the handler appends time.monotonic().
         The driver keeps the file open, takes t0 and writes 100 bytes (one IN_MODIFY), waits
         for the handler's line, sleeps 10-30 ms; latency = t_handler - t0. Floor: a forked
         plain-Python inotify reader through ctypes (uWSGI's mask, blocking read, one record
         per read batch), same file, same driver. Targets: floor, ours, uWSGI, interleaved.

The same generated app module (sched_app.py in the run dir) runs inside real uWSGI
(--plugin python3, Debian's uwsgidecorators) and inside ours (`uwsgidecorators --master
--processes 2 --import sched_app`). Every process is started in its own session and stopped
by pid (tests/interop/procs.py); sockets bind 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import datetime as dtm
import itertools
import json
import math
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / 'tests'))
from interop import procs as P  # noqa: E402  (after the sys.path line above)

ANCHORS = {
    'croniter_rs_next_per_s': '200k-600k (PEERS_BASELINE.md section 2, kept iterator)',
    'uwsgi_timer1_interval_stdev_ms': 0.28,
    'uwsgi_timer1_drift_p99_ms': 0.28,
    'uwsgi_signal_oneway_p50_us': 70,
    'uwsgi_signal_oneway_p99_us': 242,
    'uwsgi_signal_rtt_p50_us': 163,
    'uwsgi_signal_rtt_p99_us': 471,
    'source': 'bench/uwsgi_harness/BASELINE.md and bench/peers/PEERS_BASELINE.md',
}

now = time.monotonic


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def pct(xs, p):
    """Nearest-rank percentile (same as the shared harness's)."""
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100.0 * (len(xs) - 1)))]


def summary(runs):
    runs = [r for r in runs if r is not None and not (isinstance(r, float) and math.isnan(r))]
    if not runs:
        return {'median': None, 'min': None, 'max': None, 'runs': []}
    return {'median': statistics.median(runs), 'min': min(runs), 'max': max(runs), 'runs': runs}


def geomean(xs):
    xs = [x for x in xs if x]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# =============================================================================================
# part cron


def _peers(path):
    sys.path.insert(0, str(path))
    import bench_cron as BC
    import workloads as W

    return W, BC


UTC = dtm.timezone.utc
EPOCH = dtm.datetime(1970, 1, 1)


class Ours:
    """bench_cron.py's adapter contract: .iter(spec, base) -> next(), .match(spec) -> f(dt)."""

    def __init__(self, mode):
        from uwsgidecorators import _core

        self.core = _core
        self.mode = mode
        self.name = 'ours.' + mode
        self.version = 'working tree'

    def iter(self, spec, base):
        s = self.core.CronSpec(spec)
        if self.mode == 'next_after':
            c = (base.year, base.month, base.day, base.hour, base.minute)

            def nxt():
                nonlocal c
                c = s.next_after(*c)
                return c

            return nxt
        t = base.replace(tzinfo=UTC).timestamp()
        tz = 'Europe/Berlin' if self.mode == 'next_fire_berlin' else 'UTC'
        if self.mode == 'next_fire_dt':
            td = dtm.timedelta

            def nxt_dt():
                nonlocal t
                t = s.next_fire(t, tz)
                return EPOCH + td(seconds=t)

            return nxt_dt

        def nxt_fire():
            nonlocal t
            t = s.next_fire(t, tz)
            return t

        return nxt_fire

    def match(self, spec):
        m = self.core.CronSpec(spec).matches
        return lambda d: m(d.year, d.month, d.day, d.hour, d.minute)


def _cron_agree(ours, ref, spec, base, n=300):
    a, b = ours.iter(spec, base), ref.iter(spec, base)
    for _ in range(n):
        x, y = a(), b()
        if EPOCH + dtm.timedelta(seconds=x) != y:
            return f'{spec}: ours {EPOCH + dtm.timedelta(seconds=x)} croniter-rs {y}'
    return None


def part_cron(args, res):
    W, BC = _peers(args.peers)
    base = dtm.datetime(*W.CRON_BASE)
    impls = [Ours('next_fire'), Ours('next_fire_dt'), Ours('next_after'), Ours('next_fire_berlin')]
    for cls in (BC.CroniterRs, BC.Cronsim, BC.Croniter):
        try:
            impls.append(cls())
        except ImportError as e:
            res['errors'].append(f'cron: {cls.__name__} not importable: {e}')
    names = [i.name for i in impls]
    specs = W.CRON_SPECS
    year_pts = [base + dtm.timedelta(minutes=m) for m in range(0, W.CRON_YEAR_MINUTES, W.CRON_MATCH_STRIDE_MIN)]
    cold_bases = [base + dtm.timedelta(minutes=37 * i) for i in range(W.CRON_NEXT_COLD_N)]
    raw = {n: {s: {'iter': [], 'cold': [], 'match_ns': []} for s in specs} for n in names}
    ref = next((i for i in impls if i.name == 'croniter-rs'), None)
    if ref is not None:
        bad = [e for s in specs if (e := _cron_agree(impls[0], ref, s, base))]
        res['cron_agreement_with_croniter_rs'] = bad or 'first 300 fires of every spec equal'
    runs = args.runs if args.cron_runs is None else args.cron_runs
    for r in range(runs):
        for si, spec in enumerate(specs):
            order = impls[(r + si) % len(impls) :] + impls[: (r + si) % len(impls)]
            for impl in order:
                n_total, t_total = 0, 0.0
                while t_total < args.cron_min_time:
                    nxt = impl.iter(spec, base)
                    t0 = time.perf_counter()
                    for _ in range(W.CRON_NEXT_ITER_N):
                        nxt()
                    t_total += time.perf_counter() - t0
                    n_total += W.CRON_NEXT_ITER_N
                it = n_total / t_total
                t0 = time.perf_counter()
                for b in cold_bases:
                    impl.iter(spec, b)()
                cold = len(cold_bases) / (time.perf_counter() - t0)
                m = impl.match(spec)
                t0 = time.perf_counter()
                for d in year_pts:
                    m(d)
                mns = (time.perf_counter() - t0) / len(year_pts) * 1e9
                x = raw[impl.name][spec]
                x['iter'].append(it)
                x['cold'].append(cold)
                x['match_ns'].append(mns)
                log(
                    f'# run {r} cron {impl.name:22s} {spec:14s} iter {it:11.0f}/s  '
                    f'parse+next {cold:10.0f}/s  match {mns:8.0f} ns'
                )
    out = {}
    for n in names:
        out[n] = {
            s: {
                'next_iter_per_s': summary(raw[n][s]['iter']),
                'next_cold_per_s': summary(raw[n][s]['cold']),
                'match_ns_per_check': summary(raw[n][s]['match_ns']),
            }
            for s in specs
        }
    res['results']['cron'] = out
    res['cron_specs'] = specs
    res['versions'].update({i.name: getattr(i, 'version', None) for i in impls})
    ratios = {}
    if ref is not None:

        def med(n, s, k):
            return out[n][s][k]['median']

        for n in [i.name for i in impls if i.name.startswith('ours.')]:
            it = {s: med(n, s, 'next_iter_per_s') / med('croniter-rs', s, 'next_iter_per_s') for s in specs}
            cold = {s: med(n, s, 'next_cold_per_s') / med('croniter-rs', s, 'next_cold_per_s') for s in specs}
            match = {s: med('croniter-rs', s, 'match_ns_per_check') / med(n, s, 'match_ns_per_check') for s in specs}
            ratios[n] = {
                'next_iter_vs_croniter_rs': it,
                'next_iter_vs_croniter_rs_geomean': geomean(it.values()),
                'next_iter_vs_croniter_rs_min': min(it.values()),
                'parse_next_vs_croniter_rs': cold,
                'parse_next_vs_croniter_rs_geomean': geomean(cold.values()),
                'match_speedup_vs_croniter_rs_geomean': geomean(match.values()),
            }
        if 'cronsim' in names:
            it = {s: med('ours.next_fire', s, 'next_iter_per_s') / med('cronsim', s, 'next_iter_per_s') for s in specs}
            ratios['ours.next_fire']['next_iter_vs_cronsim_geomean'] = geomean(it.values())
        res['targets_met']['cron_next_fire_at_least_croniter_rs_every_spec'] = (
            ratios['ours.next_fire']['next_iter_vs_croniter_rs_min'] >= 1.0
        )
        res['targets_met']['cron_next_fire_dt_at_least_croniter_rs_every_spec'] = (
            ratios['ours.next_fire_dt']['next_iter_vs_croniter_rs_min'] >= 1.0
        )
    res['ratios']['cron'] = ratios


# =============================================================================================
# the app module that runs inside both masters

APP = textwrap.dedent(
    '''
    """Generated by bench/bench_sched.py: runs inside real uWSGI and inside ours."""
    import os
    import threading
    import time

    import uwsgi
    import uwsgidecorators as dec

    MODE = os.environ['SCHED_MODE']
    OUT = os.environ['SCHED_OUT']
    now = time.monotonic


    def application(env, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'ok']


    def appender(name):
        return os.open(os.path.join(OUT, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


    def put(name, text):
        tmp = os.path.join(OUT, '.%s.%d' % (name, os.getpid()))
        with open(tmp, 'w') as f:
            f.write(text)
        os.rename(tmp, os.path.join(OUT, name))


    def recorder(name):
        st = {'fd': None}

        def h(signum):
            t = now()
            if st['fd'] is None:
                st['fd'] = appender(name)
            os.write(st['fd'], ('%.6f\\n' % t).encode())
        return h


    if MODE == 'timer':
        # SCHED_TIMERS="1:worker1,0.1:worker2"
        for item in os.environ['SCHED_TIMERS'].split(','):
            period, target = item.split(':')
            secs = int(period) if float(period) == int(float(period)) else float(period)
            dec.timer(secs, target=target)(recorder('ticks.' + period))
        put('reg', '%.6f\\n' % now())

    if MODE == 'signal':
        SIG_A, SIG_B = 21, 22
        N, GAP = int(os.environ['SCHED_SIG_N']), 0.001
        ev = threading.Event()
        w2 = {'fd': None}

        @dec.signal(SIG_A, target='worker2')
        def on_a(signum):
            t1 = now()
            uwsgi.signal(SIG_B)
            if w2['fd'] is None:
                w2['fd'] = appender('sig.recv')
            os.write(w2['fd'], ('%.6f\\n' % t1).encode())

        @dec.signal(SIG_B, target='worker1')
        def on_b(signum):
            ev.set()

        def driver():
            time.sleep(1.0)
            rows = []
            for i in range(N):
                ev.clear()
                t0 = now()
                uwsgi.signal(SIG_A)
                ok = ev.wait(2.0)
                t2 = now()
                rows.append('%.6f %.6f %d' % (t0, t2, ok))
                time.sleep(GAP)
            put('sig.sent', '\\n'.join(rows) + '\\n')

        @dec.postfork
        def start_driver():
            if uwsgi.worker_id() == 1:
                threading.Thread(target=driver, daemon=True).start()

    if MODE == 'filemon':
        dec.filemon(os.environ['SCHED_WATCH'], target='worker1')(recorder('fm.ticks'))
        put('reg', '%.6f\\n' % now())
    '''
)


class Ctx:
    def __init__(self, args, res):
        self.args = args
        self.res = res
        self.root = Path(tempfile.mkdtemp(prefix='bench-sched-'))
        (self.root / 'sched_app.py').write_text(APP)
        self.n = 0

    def run_dir(self, tag):
        self.n += 1
        d = self.root / f'{self.n:03d}-{tag}'
        d.mkdir()
        return d


def start_target(ctx, g, target, d, env, processes=2, threads=False):
    env = dict(env, SCHED_OUT=str(d))
    if target == 'uwsgi':
        port = _free_port()
        args = ['--workers', processes, '--pythonpath', ctx.root, '--chdir', d, '--module', 'sched_app']
        args += ['--http-socket', f'127.0.0.1:{port}', '--auto-procname']
        if threads:
            args.append('--enable-threads')
        return g.uwsgi(args, name='uwsgi', env=env)
    args = ['--master', '--processes', processes, '--pythonpath', ctx.root, '--chdir', d, '--import', 'sched_app']
    return g.master(args, name='ours', env=env)


def _free_port():
    import socket

    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


def read_floats(path, col=0):
    return [float(line.split()[col]) for line in P.read_lines(path)]


# =============================================================================================
# part timer


def tick_stats(ts, period, reg, duration):
    r = {'ticks': len(ts), 'expected': int(duration / period)}
    if len(ts) < 3:
        return r
    iv = [b - a for a, b in itertools.pairwise(ts)]
    ks = [round((t - ts[0]) / period) for t in ts]
    off = [t - k * period for t, k in zip(ts, ks)]
    origin = min(off)
    late = [o - origin for o in off]
    # least-squares slope of off against time: drift in ms per minute
    mk = statistics.mean(ks)
    mo = statistics.mean(off)
    sxx = sum((k - mk) ** 2 for k in ks)
    slope = sum((k - mk) * (o - mo) for k, o in zip(ks, off)) / sxx if sxx else 0.0
    r.update(
        {
            'missed': max(0, ks[-1] + 1 - len(ts)),
            'interval_mean_s': statistics.mean(iv),
            'interval_stdev_ms': statistics.pstdev(iv) * 1e3,
            'interval_min_s': min(iv),
            'interval_max_s': max(iv),
            'lateness_p50_ms': pct(late, 50) * 1e3,
            'lateness_p99_ms': pct(late, 99) * 1e3,
            'lateness_max_ms': max(late) * 1e3,
            'drift_ms_per_min': slope / period * 60 * 1e3,
            'drift_vs_first_p99_ms': pct([o - off[0] for o in off], 99) * 1e3,
            'first_tick_after_reg_s': ts[0] - reg if reg is not None else None,
        }
    )
    return r


def timer_floor(d, periods, duration):
    """The floor, in a forked child: a plain Python process that sleeps to absolute deadlines
    (time.sleep of the remaining time) on each period's grid and records time.monotonic()."""
    fds = {p: os.open(d / ('ticks.' + p), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) for p in periods}
    t0 = now()
    (d / 'reg').write_text(f'{t0:.6f}\n')
    nxt = {p: t0 + float(p) for p in periods}
    while True:
        p = min(nxt, key=nxt.get)
        if nxt[p] > t0 + duration + 1.0:
            return
        left = nxt[p] - now()
        if left > 0:
            time.sleep(left)
        os.write(fds[p], f'{now():.6f}\n'.encode())
        nxt[p] += float(p)


def run_timer(ctx, target):
    d = ctx.run_dir('timer-' + target)
    g = P.ProcGroup(d / 'logs')
    timers = '1:worker1' if target == 'uwsgi' else '1:worker1,0.1:worker2'
    pid = None
    try:
        if target == 'floor':
            pid = os.fork()
            if pid == 0:
                try:
                    timer_floor(d, ['1', '0.1'], ctx.args.duration)
                finally:
                    os._exit(0)
            os.waitpid(pid, 0)
            pid = None
        else:
            m = start_target(ctx, g, target, d, {'SCHED_MODE': 'timer', 'SCHED_TIMERS': timers})
            P.wait_until(lambda: (d / 'reg').exists(), 60, 'app import', [m])
            time.sleep(ctx.args.duration + 1.2)
            P.wait_until(m.alive, 1, 'alive', [m])
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        g.close()
    reg = float((d / 'reg').read_text().split()[0])
    out = {}
    for item in timers.split(','):
        period = item.split(':')[0]
        ts = read_floats(d / ('ticks.' + period))
        # only ticks inside the measured window (registration + duration + one period)
        ts = [t for t in ts if t <= reg + ctx.args.duration + float(period)]
        out['timer' + period] = tick_stats(ts, float(period), reg, ctx.args.duration)
    return out


def run_timer_together(ctx, targets):
    """All targets tick in the SAME window (started together, measured over the same seconds),
    so a stall of this shared machine (another build, a journal commit) hits them alike; the
    sequential mode compares windows that may differ. Returns {target: run_timer-like result}."""
    timers = {t: '1:worker1' if t == 'uwsgi' else '1:worker1,0.1:worker2' for t in targets}
    dirs = {t: ctx.run_dir('timer-' + t) for t in targets}
    groups = {t: P.ProcGroup(dirs[t] / 'logs') for t in targets if t != 'floor'}
    pid = None
    try:
        procs = {
            t: start_target(ctx, groups[t], t, dirs[t], {'SCHED_MODE': 'timer', 'SCHED_TIMERS': timers[t]})
            for t in groups
        }
        for t, m in procs.items():
            P.wait_until(lambda t=t: (dirs[t] / 'reg').exists(), 60, 'app import', [m])
        if 'floor' in targets:
            pid = os.fork()
            if pid == 0:
                try:
                    timer_floor(dirs['floor'], ['1', '0.1'], ctx.args.duration)
                finally:
                    os._exit(0)
        time.sleep(ctx.args.duration + 1.2)
        for m in procs.values():
            P.wait_until(m.alive, 1, 'alive', [m])
        if pid:
            os.waitpid(pid, 0)
            pid = None
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        for g in groups.values():
            g.close()
    out = {}
    for t in targets:
        d = dirs[t]
        reg = float((d / 'reg').read_text().split()[0])
        res = {}
        for item in timers[t].split(','):
            period = item.split(':')[0]
            ts = [x for x in read_floats(d / ('ticks.' + period)) if x <= reg + ctx.args.duration + float(period)]
            res['timer' + period] = tick_stats(ts, float(period), reg, ctx.args.duration)
        out[t] = res
    return out


def part_timer_together(ctx, targets):
    store = {}
    for r in range(ctx.args.runs):
        try:
            res = run_timer_together(ctx, targets)
        except Exception as e:  # keep the other runs going
            ctx.res['errors'].append(f'timer together run {r}: {type(e).__name__}: {e}'.splitlines()[0][:400])
            log(f'# run {r} timer together: ERROR {e}'.splitlines()[0][:400])
            continue
        for t, rt in res.items():
            collect(store, 'timer', t, rt)
            log(f'# run {r} timer {t} (together): {json.dumps(rt, sort_keys=True)}')
    summarize(ctx, 'timer', store)


# =============================================================================================
# part signal


def run_signal(ctx, target):
    d = ctx.run_dir('signal-' + target)
    g = P.ProcGroup(d / 'logs')
    n = ctx.args.sig_n
    try:
        m = start_target(ctx, g, target, d, {'SCHED_MODE': 'signal', 'SCHED_SIG_N': n}, threads=True)
        P.wait_until(lambda: (d / 'sig.sent').exists(), 60 + n * 0.01, 'sig.sent', [m])
        time.sleep(0.2)
    finally:
        g.close()
    sent = [line.split() for line in P.read_lines(d / 'sig.sent')]
    recv = read_floats(d / 'sig.recv')
    ok = [(float(a), float(b)) for a, b, c in sent if c == '1']
    w = 50
    r = {'roundtrips_ok': len(ok), 'sent': len(sent), 'handled_in_w2': len(recv)}
    if len(recv) == len(sent):
        one = [t1 - float(s[0]) for s, t1 in zip(sent[w:], recv[w:])]
        r.update({'oneway_p50_us': pct(one, 50) * 1e6, 'oneway_p99_us': pct(one, 99) * 1e6})
    rtt = [b - a for a, b in ok[w:]]
    if rtt:
        r.update({'rtt_p50_us': pct(rtt, 50) * 1e6, 'rtt_p99_us': pct(rtt, 99) * 1e6})
    return {'signal': r}


# =============================================================================================
# part filemon

IN_MODIFY, IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_DELETE_SELF, IN_MOVE_SELF = 0x100, 0x200, 0x400, 0x800
UWSGI_MASK = IN_ATTRIB | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MODIFY | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO


def inotify_floor(path, out):
    """The floor, in a forked child: libc inotify through ctypes, blocking read, one record per
    read batch (as uWSGI raises one signal per batch)."""
    libc = ctypes.CDLL(ctypes.util.find_library('c'), use_errno=True)
    fd = libc.inotify_init1(0)
    if fd < 0 or libc.inotify_add_watch(fd, os.fsencode(path), UWSGI_MASK) < 0:
        os._exit(3)
    rec = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(os.open(out + '.ready', os.O_WRONLY | os.O_CREAT, 0o644), b'1')
    while True:
        os.read(fd, 65536)
        os.write(rec, (f'{now():.6f}\n').encode())


def run_filemon(ctx, target):
    d = ctx.run_dir('filemon-' + target)
    watched = d / 'watched.txt'
    watched.write_bytes(b'')
    ticks = d / 'fm.ticks'
    g = P.ProcGroup(d / 'logs')
    pid = None
    lats, missed = [], 0
    try:
        if target == 'floor':
            pid = os.fork()
            if pid == 0:
                try:
                    inotify_floor(str(watched), str(ticks))
                finally:
                    os._exit(1)
            procs = []
            P.wait_until(lambda: Path(str(ticks) + '.ready').exists(), 10, 'floor ready')
        else:
            m = start_target(ctx, g, target, d, {'SCHED_MODE': 'filemon', 'SCHED_WATCH': str(watched)})
            procs = [m]
            P.wait_until(lambda: (d / 'reg').exists(), 60, 'app import', procs)
        fd = os.open(watched, os.O_WRONLY | os.O_APPEND)
        payload = b'x' * 100

        def count():
            try:
                return os.path.getsize(ticks)
            except FileNotFoundError:
                return 0

        def wait_new(size0, timeout):
            end = now() + timeout
            while now() < end:
                if count() > size0:
                    return True
                time.sleep(0.0002)
            return False

        # warm-up: until the handler has run once (uWSGI adds monitors on its next master cycle)
        for _ in range(100):
            s0 = count()
            os.write(fd, payload)
            if wait_new(s0, 0.3):
                break
        else:
            raise RuntimeError(f'{target}: file monitor never fired')
        time.sleep(0.3)
        for k in range(ctx.args.fm_n):
            s0 = count()
            n0 = len(P.read_lines(ticks))
            t0 = now()
            os.write(fd, payload)
            if wait_new(s0, 5.0):
                time.sleep(0.002)  # let a line finish
                lines = P.read_lines(ticks)
                lats.append(float(lines[n0]) - t0)
            else:
                missed += 1
            time.sleep(random.uniform(0.01, 0.03))
        os.close(fd)
        for p in procs:
            if not p.alive():
                raise RuntimeError(f'{target} died')
    finally:
        if pid:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        g.close()
    r = {'events': len(lats), 'missed': missed}
    if lats:
        r.update({'p50_us': pct(lats, 50) * 1e6, 'p99_us': pct(lats, 99) * 1e6, 'max_us': max(lats) * 1e6})
    return {'filemon': r}


# =============================================================================================
# driver


def collect(store, part, target, result):
    for sub, metrics in result.items():
        for k, v in metrics.items():
            if isinstance(v, (int, float)) and v is not None:
                store.setdefault(part, {}).setdefault(f'{target}.{sub}', {}).setdefault(k, []).append(v)


def summarize(ctx, part, store):
    ctx.res['results'][part] = {
        tgt: {k: summary(v) for k, v in metrics.items()} for tgt, metrics in store.get(part, {}).items()
    }


def part_processes(ctx, part, fn, targets):
    store = {}
    for r in range(ctx.args.runs):
        order = targets[r % len(targets) :] + targets[: r % len(targets)]
        for t in order:
            try:
                res = fn(ctx, t)
            except Exception as e:  # keep the other targets going
                ctx.res['errors'].append(f'{part} {t} run {r}: {type(e).__name__}: {e}'.splitlines()[0][:400])
                log(f'# run {r} {part} {t}: ERROR {e}'.splitlines()[0][:400])
                continue
            collect(store, part, t, res)
            log(f'# run {r} {part} {t}: {json.dumps(res, sort_keys=True)}')
    summarize(ctx, part, store)


def med(res, part, tgt, k):
    try:
        return res['results'][part][tgt][k]['median']
    except KeyError:
        return None


def ratio(a, b):
    return a / b if a is not None and b else None


def finish_ratios(res):
    rt, tm = res['ratios'], res['targets_met']
    if 'timer' in res['results']:
        o1, u1 = 'ours.timer1', 'uwsgi.timer1'
        rt['timer'] = {
            'lateness_p99_ours_over_uwsgi_1s': ratio(
                med(res, 'timer', o1, 'lateness_p99_ms'), med(res, 'timer', u1, 'lateness_p99_ms')
            ),
            'interval_stdev_ours_over_uwsgi_1s': ratio(
                med(res, 'timer', o1, 'interval_stdev_ms'), med(res, 'timer', u1, 'interval_stdev_ms')
            ),
        }
        a, b = med(res, 'timer', o1, 'lateness_p99_ms'), med(res, 'timer', u1, 'lateness_p99_ms')
        tm['timer_1s_lateness_p99_not_worse_than_uwsgi'] = None if a is None or b is None else a <= b
        c = med(res, 'timer', 'ours.timer0.1', 'lateness_p99_ms')
        tm['timer_0.1s_lateness_p99_under_1ms'] = None if c is None else c < 1.0
        for p in ('1', '0.1'):
            rt['timer'][f'lateness_p99_ours_over_floor_{p}s'] = ratio(
                med(res, 'timer', 'ours.timer' + p, 'lateness_p99_ms'),
                med(res, 'timer', 'floor.timer' + p, 'lateness_p99_ms'),
            )
    if 'signal' in res['results']:
        rt['signal'] = {
            k + '_ours_over_uwsgi': ratio(med(res, 'signal', 'ours.signal', k), med(res, 'signal', 'uwsgi.signal', k))
            for k in ('oneway_p50_us', 'oneway_p99_us', 'rtt_p50_us', 'rtt_p99_us')
        }
    if 'filemon' in res['results']:
        f = 'floor.filemon'
        rt['filemon'] = {
            'ours_over_floor_p50': ratio(
                med(res, 'filemon', 'ours.filemon', 'p50_us'), med(res, 'filemon', f, 'p50_us')
            ),
            'ours_over_floor_p99': ratio(
                med(res, 'filemon', 'ours.filemon', 'p99_us'), med(res, 'filemon', f, 'p99_us')
            ),
            'uwsgi_over_floor_p99': ratio(
                med(res, 'filemon', 'uwsgi.filemon', 'p99_us'), med(res, 'filemon', f, 'p99_us')
            ),
            'ours_over_uwsgi_p99': ratio(
                med(res, 'filemon', 'ours.filemon', 'p99_us'), med(res, 'filemon', 'uwsgi.filemon', 'p99_us')
            ),
        }
        x = rt['filemon']['ours_over_floor_p99']
        tm['filemon_p99_under_2x_floor'] = None if x is None else x < 2.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--parts', default='cron,timer,signal,filemon')
    ap.add_argument('--runs', type=int, default=3, help='runs per target (interleaved)')
    ap.add_argument('--cron-runs', type=int, default=None, help='runs of part cron (default: --runs)')
    ap.add_argument('--cron-min-time', type=float, default=0.05, help='seconds timed per kept-iterator figure')
    ap.add_argument('--duration', type=float, default=30.0, help='seconds of timer ticks per run')
    ap.add_argument(
        '--timer-mode',
        choices=('together', 'sequential'),
        default='together',
        help='timer targets tick in one shared window (default) or one after the other',
    )
    ap.add_argument('--sig-n', type=int, default=2000)
    ap.add_argument('--fm-n', type=int, default=200)
    ap.add_argument('--targets', default='ours,uwsgi', help='process targets for timer/signal/filemon')
    ap.add_argument('--peers', default=str(HERE / 'peers'))
    ap.add_argument('--quick', action='store_true', help='smoke run: 1 run, 5 s timers, 300 signals, 40 events')
    ap.add_argument('--keep', action='store_true', help='keep the run directories')
    args = ap.parse_args()
    # stop cleanly (every started process by pid, in the finally blocks) on SIGTERM, and on SIGINT
    # even when started in the background of a non-interactive shell (which ignores SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.quick:
        args.runs, args.duration, args.sig_n, args.fm_n = 1, 5.0, 300, 40
    parts = args.parts.split(',')
    targets = args.targets.split(',')
    from uwsgidecorators import _core  # noqa: F401  (fail early without the package)

    res = {
        'bench': 'sched',
        'runs': args.runs,
        'parts': parts,
        'results': {},
        'ratios': {},
        'targets_met': {},
        'anchors': ANCHORS,
        'errors': [],
        'versions': {'python': sys.version.split()[0]},
        'config': {
            'timer_mode': args.timer_mode,
            'duration_s': args.duration,
            'sig_n': args.sig_n,
            'fm_n': args.fm_n,
            'cpus': os.cpu_count(),
        },
    }
    t_start = time.time()
    if 'cron' in parts:
        part_cron(args, res)
    ctx = Ctx(args, res)
    try:
        if 'timer' in parts:
            if args.timer_mode == 'together':
                part_timer_together(ctx, ['floor'] + targets)
            else:
                part_processes(ctx, 'timer', run_timer, ['floor'] + targets)
        if 'signal' in parts:
            part_processes(ctx, 'signal', run_signal, targets)
        if 'filemon' in parts:
            part_processes(ctx, 'filemon', run_filemon, ['floor'] + targets)
    finally:
        if args.keep:
            log(f'# run dirs kept in {ctx.root}')
        else:
            shutil.rmtree(ctx.root, ignore_errors=True)
    finish_ratios(res)
    res['wall_s'] = round(time.time() - t_start, 1)
    sys.stdout.flush()
    print(json.dumps(res, sort_keys=True, default=str))


if __name__ == '__main__':
    main()
