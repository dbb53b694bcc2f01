"""Interop: golden files written by real uWSGI's uwsgidecorators (d01-d18) are dispatched by
OUR uwsgidecorators, under our master, to the registered functions with exactly what the real
module passes them (manifest `uwsgidecorators_view`): the decoded dict for @spool/@spoolforever/
@spoolraw, or the unpickled (*args, **kwargs) with pass_arguments=True.

The same spooler-import module (tests/interop/decor_spooler.py, the producer's function names)
is also run under the real uWSGI with Debian's uwsgidecorators, which grounds the manifest's
model in a real run.

Divergence, asserted: d05 (a body that is not UTF-8) reaches our @spool function as bytes; the
real module raises UnicodeDecodeError and uWSGI retries the file for ever.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from interop import golden as G
from interop import procs as P

DECOR = Path(__file__).resolve().parent / 'interop' / 'decor_spooler.py'
NON_UTF8 = 'd05_spool_body_bytes'


def _expected_call(job: dict, impl: str):
    """(function, record fields) the function should be called with, or None if never called."""
    view = job['uwsgidecorators_view']
    if job['id'] == NON_UTF8:
        if impl == 'uwsgi':
            return None
        vars_ = {v['key']['utf8']: v['value'] for v in job['vars']}
        d = {'ud_spool_func': 'd_task', 'ud_spool_ret': '-2', 'name': 'b', 'spooler_task_name': job['real_name']}
        import base64

        d['body'] = base64.b64decode(job['body']['b64'])
        assert vars_['name']['utf8'] == 'b'
        return 'd_task', {'items': _items(d)}
    if view['mode'] == 'pass_arguments':
        return view['function'], {'args_repr': view['args_repr'], 'kwargs_repr': view['kwargs_repr']}
    d = dict(view['dict_passed_to_function'])
    d['spooler_task_name'] = job['real_name']
    for k, v in d.items():
        if isinstance(v, str) and v.startswith('<str of '):
            d[k] = next(x['value']['utf8'] for x in job['vars'] if x['key']['utf8'] == k)
    return view['function'], {'items': _items(d)}


def _items(d):
    return [[repr(k), repr(v)] for k, v in sorted(d.items(), key=lambda kv: repr(kv[0]))]


@pytest.mark.parametrize('impl', ['ours', 'uwsgi'])
def test_decorated_functions_receive_what_the_real_module_passes(
    impl, procs, golden_dir, manifest, tmp_path, uwsgi_bin
):
    spool = Path(os.path.realpath(tmp_path)) / 'spool'
    spool.mkdir()
    out = tmp_path / 'calls.jsonl'
    dec = {'jobs': [j for j in manifest['jobs'] if j['kind'] == 'decorator']}
    now = time.time()
    placed = G.place(golden_dir, dec, spool)
    want = {}
    for name, job in placed.items():
        if G.expected(job, impl, now) != G.CONSUMED:
            continue  # future `at`
        call = _expected_call(job, impl)
        if call is not None:
            want[name] = (job['id'], call)
    args = ['--spooler', spool, '--spooler-import', DECOR, '--spooler-frequency', '1', '--spooler-ordered']
    env = {'DECOR_OUT': out}
    p = procs.master(args, env=env) if impl == 'ours' else procs.uwsgi(args, env=env)

    def key(fn, rec):
        return (fn, rec.get('args_repr'), rec.get('kwargs_repr'), str(rec.get('items')))

    expected_keys = {key(fn, f): jid for jid, (fn, f) in want.values()}

    def got_keys():
        return {key(r['fn'], r) for r in P.read_jsonl(out)}

    try:
        P.wait_until(lambda: set(expected_keys) <= got_keys(), 30, f'{len(want)} decorated calls', [p])
    except AssertionError as e:
        missing = [jid for k, jid in expected_keys.items() if k not in got_keys()]
        seen = '\n'.join(str(g)[:400] for g in sorted(got_keys()))
        want_s = '\n'.join(f'{jid} {str(k)[:400]}' for k, jid in expected_keys.items() if k not in got_keys())
        raise AssertionError(f'missing calls for {missing}\nexpected:\n{want_s}\nseen:\n{seen}') from e
    time.sleep(1.5)  # one more scan: @spoolforever (d12) runs again, nothing else may appear
    p.stop()
    extra = got_keys() - set(expected_keys)
    assert not extra, 'unexpected calls: %s' % [str(e)[:300] for e in extra]
    left = set(G.all_files(spool).values())
    forever = next(n for n, j in placed.items() if j['id'] == 'd12_spoolforever')
    assert forever in left, '@spoolforever task was deleted'
    d05 = next(n for n, j in placed.items() if j['id'] == NON_UTF8)
    assert (d05 in left) == (impl == 'uwsgi')
