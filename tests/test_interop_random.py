"""Interop both ways on seeded random content: 300 tasks with random keys and values (NUL,
non-UTF-8, up to 20000-byte values), random bodies (up to 70000 bytes) and numeric priorities.

* real uWSGI writes them (batch_writer.py imported in its master, `uwsgi.spool`), OUR spooler
  runs them (golden/consumer_spooler.py, unmodified);
* WE write them (the same script in a plain process with our `uwsgi` shim), the REAL uWSGI
  spooler runs them (golden/consume_with_uwsgi.sh).
Each side must receive exactly the dict the python3 plugin builds (SPEC 3.1), exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from interop import golden as G
from interop import procs as P
from interop.randbatch import make_batch
from interop.spoolfmt import enc_item

HERE = Path(__file__).resolve().parent / 'interop'
N = 300


def _want(name: str, vars_, body) -> list[tuple]:
    d = {'spooler_task_name': name.encode()}
    for k, v in vars_:
        d[k] = v
    if body:
        d['body'] = body
    return [(enc_item(k)['type'], enc_item(k)['b64'], enc_item(v)['type'], enc_item(v)['b64']) for k, v in d.items()]


def _got(rec) -> list[tuple]:
    return [(i['key']['type'], i['key']['b64'], i['value']['type'], i['value'].get('b64')) for i in rec['items']]


@pytest.mark.parametrize('writer', ['uwsgi', 'ours'])
def test_random_tasks_cross_over(writer, procs, golden_dir, tmp_path, uwsgi_bin):
    seed = 20261127 + (writer == 'ours')
    base = Path(os.path.realpath(tmp_path))
    spool = base / 'spool'
    spool.mkdir()
    env = {'BATCH_OUT': base, 'BATCH_SEED': seed, 'BATCH_N': N}
    if writer == 'uwsgi':
        w = procs.uwsgi(
            ['--spooler-external', spool, '--import', HERE / 'batch_writer.py'], env=env, name='uwsgi-writer'
        )
        P.wait_until(lambda: (base / 'written.done').exists(), 60, 'uWSGI to enqueue the batch', [w])
        w.stop()
    else:
        w = procs.python([HERE / 'batch_writer.py'], env={**env, 'UWSGIDECORATORS_SPOOLERS': spool}, name='our-writer')
        assert w.wait(60) == 0, w.tail()
        w.stop()
    paths = (base / 'paths').read_bytes().split(b'\n')[:-1]
    assert len(paths) == N
    batch = make_batch(seed, N)
    want = {os.path.basename(p).decode(): _want(os.path.basename(p).decode(), v, b) for p, (v, b) in zip(paths, batch)}

    out = base / 'out.jsonl'
    if writer == 'uwsgi':
        r = procs.master(
            ['--spooler', spool, '--spooler-import', golden_dir / 'consumer_spooler.py', '--spooler-frequency', '1'],
            env={'UWSGI_GOLDEN_OUT': out, 'UWSGI_GOLDEN_RET': '-2'},
        )
        P.wait_until(lambda: len(P.read_jsonl(out)) >= N, 60, f'our spooler to run {N} tasks', [r])
        r.stop()
    else:
        rc, text = G.consume_with_uwsgi(procs, golden_dir, spool, out, timeout=60)
        assert rc == 0, text[-3000:]
    recs = P.read_jsonl(out)
    seen = {}
    bad = []
    for rec in recs:
        seen[rec['task']] = seen.get(rec['task'], 0) + 1
        if rec['task'] not in want:
            bad.append('unknown task {}'.format(rec['task']))
        elif _got(rec) != want[rec['task']]:
            bad.append('{}: dict differs'.format(rec['task']))
    assert not bad, bad[:10]
    assert seen == {n: 1 for n in want}
