#!/usr/bin/env python3
"""RPC benchmark (issue 13): real uWSGI and ours INTERLEAVED in one run, on the same code.

    python bench/bench_rpc.py [--runs N] [--duration S]

Both sides run the vendored harness's target code (bench/uwsgi_harness/app_bench.py, mode
``rpc``, as its 08_rpc.sh does): a server instance with 1 worker and ``--socket 127.0.0.1:P``
registers ``ping`` (returns b"pong"); a client instance registers it too, and a thread of its
worker 1 measures for ``--duration`` s each (default 2, the harness's RPC_DURATION):

  local_rpc / local_rpc_arg / local_call   uwsgi.rpc(None, b"ping"[, b"x"]) and uwsgi.call(b"ping")
                                            per second, in the client's worker (100 per timing)
  remote                                    uwsgi.rpc(b"127.0.0.1:P", b"ping") in a tight loop: one
                                            TCP connection per call (the protocol closes after each
                                            reply, in uWSGI as here, so there is no kept-connection
                                            variant); calls per second, p50 and p99 latency

uWSGI: ``uwsgi --plugin python3,rpc --master --module app_bench`` (the client with
``--enable-threads`` and an ``--http-socket``, as the harness starts it). Ours:
``uwsgidecorators --import app_bench`` (the master imports the module, forks the worker; the
server adds ``--socket``). The order of the two alternates between runs. Per-run lines go to
stderr, then a table, then ONE final JSON line on stdout:
{"bench": "rpc", "runs": R, "results": {target: {metric: {median,min,max,runs}}},
 "ratios": {...}, "targets_met": {...}, "load": "..."}.

Targets (issue 13): remote calls/s >= 2x uWSGI's with p99 <= uWSGI's; local calls/s >= uWSGI's.
Recorded anchor (BASELINE.md): uWSGI remote 6,870 calls/s, p50 133 us; local 1.51 M/s.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HARNESS = HERE / 'uwsgi_harness'
sys.path.insert(0, str(REPO / 'tests'))
from interop import procs as P  # noqa: E402  (after the sys.path line above)

METRICS = ('local_rpc_per_s', 'local_rpc_arg_per_s', 'local_call_per_s', 'remote_rate', 'remote_p50_us', 'remote_p99_us')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return int(s.getsockname()[1])


def connectable(port: int) -> bool:
    try:
        socket.create_connection(('127.0.0.1', port), 0.2).close()
        return True
    except OSError:
        return False


def uwsgi_argv(extra: list[str]) -> list[str]:
    return [
        *(P.uwsgi_bin(), '--plugin', 'python3,rpc', '--master', '--die-on-term', '--processes', '1'),
        *('--pythonpath', str(HARNESS), '--chdir', str(HARNESS), '--module', 'app_bench'),
        *extra,
    ]


def ours_argv(extra: list[str]) -> list[str]:
    return [
        *P.master_argv(),
        *('--processes', '1', '--pythonpath', str(HARNESS), '--chdir', str(HARNESS), '--import', 'app_bench'),
        *extra,
    ]


def one_run(target: str, group: P.ProcGroup, out: Path, duration: float) -> dict[str, float]:
    port = free_port()
    env = {'BENCH_MODE': 'rpc', 'BENCH_OUT': str(out), 'BENCH_RPC_DURATION': str(duration)}
    if target == 'uwsgi':
        srv = group.start(uwsgi_argv(['--socket', f'127.0.0.1:{port}']), name='uwsgi-server', env=P.uwsgi_env(env))
    else:
        srv = group.start(ours_argv(['--plugin', 'rpc', '--socket', f'127.0.0.1:{port}']), name='ours-server', env=P.our_env(env))
    P.wait_until(lambda: connectable(port) and 'spawned uWSGI worker 1' in srv.log(), 30, 'rpc server', [srv])
    time.sleep(0.3)
    cenv = dict(env, BENCH_RPC_NODE=f'127.0.0.1:{port}')
    if target == 'uwsgi':
        argv = uwsgi_argv(['--enable-threads', '--http-socket', f'127.0.0.1:{free_port()}'])
        cli = group.start(argv, name='uwsgi-client', env=P.uwsgi_env(cenv))
    else:
        cli = group.start(ours_argv([]), name='ours-client', env=P.our_env(cenv))
    result = out / 'rpc.json'
    P.wait_until(result.exists, 4 * duration + 60, 'rpc.json', [cli, srv])
    cli.stop()
    srv.stop()
    res = ast.literal_eval(result.read_text())
    if not isinstance(res, dict):
        raise RuntimeError(f'{target}: unexpected result {res!r}')
    errors = {k: v for k, v in res.items() if k.endswith('_error') or (k == 'remote_errors' and v)}
    if errors:
        raise RuntimeError(f'{target}: {errors}')
    return {k: float(res[k]) for k in METRICS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--duration', type=float, default=2.0)
    args = ap.parse_args()
    load_before = os.getloadavg()
    runs: dict[str, list[dict[str, float]]] = {'uwsgi': [], 'ours': []}
    with tempfile.TemporaryDirectory(prefix='bench-rpc-') as tmp:
        group = P.ProcGroup(Path(tmp) / 'logs')
        try:
            for i in range(args.runs):
                order = ['uwsgi', 'ours'] if i % 2 == 0 else ['ours', 'uwsgi']
                for target in order:
                    out = Path(tmp) / f'{target}-{i}'
                    out.mkdir()
                    r = one_run(target, group, out, args.duration)
                    runs[target].append(r)
                    print(f'# run {i + 1} {target}: ' + ', '.join(f'{k}={v:,.0f}' for k, v in r.items()), file=sys.stderr)
        finally:
            group.close()
    load_after = os.getloadavg()
    results = {
        t: {
            m: {
                'median': statistics.median(r[m] for r in rs),
                'min': min(r[m] for r in rs),
                'max': max(r[m] for r in rs),
                'runs': [r[m] for r in rs],
            }
            for m in METRICS
        }
        for t, rs in runs.items()
    }
    # ratios per run (paired: the two targets of one run ran back to back), then their median
    ratios = {
        m: statistics.median(o[m] / u[m] for o, u in zip(runs['ours'], runs['uwsgi'], strict=True)) for m in METRICS
    }
    met = {
        'remote_rate >= 2x uWSGI': ratios['remote_rate'] >= 2.0,
        'remote_p99 <= uWSGI': ratios['remote_p99_us'] <= 1.0,
        'local_rpc >= uWSGI': ratios['local_rpc_per_s'] >= 1.0,
        'local_call >= uWSGI': ratios['local_call_per_s'] >= 1.0,
    }
    print(f'\n{"metric":<22}{"uWSGI (median)":>18}{"ours (median)":>18}{"ours/uWSGI":>12}', file=sys.stderr)
    for m in METRICS:
        u, o = results['uwsgi'][m]['median'], results['ours'][m]['median']
        print(f'{m:<22}{u:>18,.1f}{o:>18,.1f}{ratios[m]:>12.2f}', file=sys.stderr)
    for k, v in met.items():
        print(f'target {k}: {"met" if v else "NOT met"}', file=sys.stderr)
    load = f'loadavg before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f}'
    print(load, file=sys.stderr)
    print(
        json.dumps(
            {'bench': 'rpc', 'runs': args.runs, 'results': results, 'ratios': ratios, 'targets_met': met, 'load': load}
        )
    )
    return 0


if __name__ == '__main__':
    sys.exit(main())
