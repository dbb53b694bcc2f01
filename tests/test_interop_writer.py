"""Interop, write side: OUR enqueue path writes byte-identical files to the real uWSGI's.

golden/producer_app.py (the job matrix the golden files came from: raw uwsgi.spool calls,
uwsgidecorators @spool/@spoolforever/@spoolraw, errors) runs unmodified
* under our master (`--import producer_app.py`, two --spooler-external dirs A and B, as
  produce_with_uwsgi.sh runs it under uWSGI), and
* in a plain python process that only has our `uwsgi` shim, configured by environment.
golden/build_manifest.py (the golden's own stdlib parser) then describes our files, and:
1. every call returns or raises as uWSGI's did;
2. every file is byte-identical to golden files/<id>.bin (names differ; the `spooler` routing
   value holds our dir B's realpath instead of /tmp/uwsgi-golden-spool-B);
3. placement (dir A/B, priority subdir, mode 0600, `at` mtime, name fields) is uWSGI's;
4. the REAL uWSGI spooler (golden/consume_with_uwsgi.sh) executes our files and passes exactly
   the manifest's dicts.

Divergences, asserted: we refuse with a ValueError (so no file) what uWSGI writes but can never
run correctly: r07 (a value over 65535 bytes, which uWSGI silently truncates), r11 (a
non-numeric priority: uWSGI never scans that directory) and r17 (a zero-length key: uWSGI's
reader deletes the file unrun). Error messages may add detail after uWSGI's text
("unable to spool job: unknown spooler ...").
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop import golden as G
from interop import procs as P
from interop import spoolfmt

GOLDEN_B = '/tmp/uwsgi-golden-spool-B'
# we refuse what uWSGI writes but truncates (r07) or never runs (r11: dir 'high'; r17: empty key)
REFUSED = {'r07_value_over_64k_truncated', 'r11_priority_nonnumeric', 'r17_empty_key'}


@dataclass
class Produced:
    mode: str
    base: Path
    a: Path
    b: Path
    manifest: dict  # build_manifest.py's description of OUR files
    raw: dict
    log: str


def _run_producer(mode, golden_dir, base, group):
    a, b = base / 'A', base / 'B'
    a.mkdir()
    b.mkdir()
    raw = base / 'raw.json'
    env = {'GOLDEN_RAW': raw, 'GOLDEN_SPOOL_B': b}
    if mode == 'master':
        p = group.master(
            ['--master', '--spooler-external', a, '--spooler-external', b, '--import', golden_dir / 'producer_app.py'],
            env=env,
            name='ours-producer',
        )
        P.wait_until(lambda: 'GOLDEN PRODUCER DONE' in p.log(), 60, 'producer_app.py under our master', [p])
        p.stop()
    else:
        env.update(
            {
                'UWSGIDECORATORS_SPOOLERS': os.pathsep.join([str(a), str(b)]),
                'UWSGIDECORATORS_OPT': json.dumps({'spooler-external': [str(a), str(b)]}),
            }
        )
        p = group.python([golden_dir / 'producer_app.py'], env=env, name='attached-producer')
        rc = p.wait(60)
        p.stop()
        assert rc == 0, f'producer_app.py in a plain process failed ({rc}):\n{p.tail()}'
        assert 'GOLDEN PRODUCER DONE' in p.log()
    return a, b, raw, p.log()


@pytest.fixture(scope='module', params=['master', 'attached'])
def produced(request, golden_dir, tmp_path_factory):
    base = Path(os.path.realpath(tmp_path_factory.mktemp(f'writer-{request.param}')))
    group = P.ProcGroup(base / 'logs')
    try:
        a, b, raw, log = _run_producer(request.param, golden_dir, base, group)
        out = base / 'described'
        r = subprocess.run(
            [sys.executable, str(golden_dir / 'build_manifest.py'), str(raw), str(a), str(b), str(out)],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert r.returncode == 0, f'build_manifest.py failed on our files:\n{r.stdout}{r.stderr}'
        yield Produced(request.param, base, a, b, G.load_manifest(out), json.loads(raw.read_text()), log)
    finally:
        group.close()


def _jobs(manifest):
    return {j['id']: j for j in manifest['jobs']}


def test_every_call_returns_or_raises_like_uwsgi(produced, manifest):
    ours, gold = _jobs(produced.manifest), _jobs(manifest)
    assert sorted(ours) == sorted(gold)
    bad = []
    for jid, g in gold.items():
        o = ours[jid]
        if jid in REFUSED:
            if o['ok'] or not o['exception'].startswith(('ValueError:', 'SpoolTooLargeError:')):
                bad.append(f'{jid}: expected a ValueError (a documented refusal), got {o}')
            continue
        if g['ok'] != o['ok']:
            bad.append('{}: uWSGI ok={}, ours ok={} ({})'.format(jid, g['ok'], o['ok'], o.get('exception')))
        elif not g['ok']:
            want = g['exception']
            got = o['exception']
            if jid == 'e07_packet_too_big':  # our message may be more precise; the type must be a ValueError
                got_ok = got.startswith(('ValueError:', 'SpoolTooLargeError:'))
            else:
                got_ok = got == want or got.startswith(want + ': ')
            if not got_ok:
                bad.append(f'{jid}: uWSGI raised {want!r}, ours {got!r}')
    assert not bad, '\n'.join(bad) + '\n' + produced.log[-2000:]


def test_refused_jobs_write_no_file(produced):
    for jid in REFUSED:
        job = _jobs(produced.manifest)[jid]
        assert job['ok'] is False and 'file' not in job, job


def _normalized_golden_bytes(golden_dir, job, our_b: Path) -> bytes:
    """The golden file with /tmp/uwsgi-golden-spool-B replaced by our B's realpath (re-encoded)."""
    data = (golden_dir / job['file']).read_bytes()
    vars_, body = spoolfmt.decode(data)
    if any(k == b'spooler' for k, _ in vars_):
        vars_ = [(k, str(our_b).encode() if (k == b'spooler' and v == GOLDEN_B.encode()) else v) for k, v in vars_]
        return spoolfmt.encode(vars_, body)
    return data


def test_files_are_byte_identical_to_uwsgis(produced, manifest, golden_dir):
    ours = _jobs(produced.manifest)
    out = produced.base / 'described'
    bad, checked = [], 0
    for job in G.file_jobs(manifest):
        if job['id'] in REFUSED:
            continue
        o = ours[job['id']]
        if not o.get('file'):
            bad.append('{}: no file written'.format(job['id']))
            continue
        got = (out / o['file']).read_bytes()
        want = _normalized_golden_bytes(golden_dir, job, produced.b)
        if got != want:
            i = next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), min(len(got), len(want)))
            bad.append(
                f'{job["id"]}: differs at byte {i} (ours {len(got)} bytes, uWSGI {len(want)}): '
                f'ours {got[max(0, i - 8) : i + 16]!r} / uWSGI {want[max(0, i - 8) : i + 16]!r}'
            )
        checked += 1
    assert not bad, '\n'.join(bad)
    assert checked == len(G.file_jobs(manifest)) - len(REFUSED)


def test_placement_mode_mtime_and_name_are_uwsgis(produced, manifest):
    ours = _jobs(produced.manifest)
    pid = produced.raw['meta']['master_pid']  # producer_app records os.getpid() of the enqueuing process
    host = socket.gethostname()
    bad, counters = [], []
    for job in G.file_jobs(manifest):
        if job['id'] in REFUSED:
            continue
        o = ours[job['id']]
        for key in ('spooler_dir', 'priority_subdir', 'mode', 'header', 'size'):
            if key in ('size', 'header') and G.has_var(job, 'spooler'):
                continue  # the routing value (our B's realpath) has another length
            if o.get(key) != job[key]:
                bad.append('{}: {} ours {!r}, uWSGI {!r}'.format(job['id'], key, o.get(key), job[key]))
        if G.has_var(job, 'at') and o['mtime'] != job['mtime']:
            bad.append('{}: at mtime ours {}, uWSGI {}'.format(job['id'], o['mtime'], job['mtime']))
        f = o.get('real_name_fields') or {}
        if f.get('host') != host or f.get('pid') != str(pid):
            bad.append('{}: name {} (want host {} pid {})'.format(job['id'], o.get('real_name'), host, pid))
        counters.append(int(f.get('counter', 0)))
        if not o['returned'].endswith('/' + o['real_name']):
            bad.append('{}: returned {!r} is not the file'.format(job['id'], o['returned']))
    assert counters == sorted(counters) and len(set(counters)) == len(counters), f'counter not increasing: {counters}'
    assert not bad, '\n'.join(bad)


def test_no_temporary_files_left(produced):
    leftovers = [
        os.path.join(r, f)
        for d in (produced.a, produced.b)
        for r, _ds, fs in os.walk(d)
        for f in fs
        if not f.startswith('uwsgi_spoolfile_on_')
    ]
    assert leftovers == []


def test_real_uwsgi_executes_our_files_with_the_manifest_dicts(produced, manifest, golden_dir, procs, tmp_path):
    """Our files, gathered in one dir (priority subdirs kept), drained by the real uWSGI spooler."""
    ours = _jobs(produced.manifest)
    spool = Path(os.path.realpath(tmp_path)) / 'consume'
    spool.mkdir()
    now = time.time()
    expect = {}
    for job in G.file_jobs(manifest):
        o = ours[job['id']]
        if job['id'] in REFUSED or not o.get('file'):
            continue
        if G.expected(job, 'uwsgi', now) != G.CONSUMED:
            continue  # future `at`, non-numeric priority dir, zero-length key: uWSGI never calls them
        src = (produced.a if o['spooler_dir'] == 'A' else produced.b) / (o['priority_subdir'] or '') / o['real_name']
        dst_dir = spool / o['priority_subdir'] if o['priority_subdir'] else spool
        dst_dir.mkdir(exist_ok=True)
        shutil.copy2(src, dst_dir / o['real_name'])
        expect[o['real_name']] = job
    assert len(expect) >= 30, sorted(j['id'] for j in expect.values())
    out = tmp_path / 'uwsgi.jsonl'
    rc, text = G.consume_with_uwsgi(procs, golden_dir, spool, out, timeout=30)
    assert rc == 0, f'real uWSGI did not drain our files (status {rc}):\n{text[-3000:]}'
    records = P.read_jsonl(out)
    seen = {}
    bad = []
    for r in records:
        seen[r['task']] = seen.get(r['task'], 0) + 1
        job = expect.get(r['task'])
        if job is None:
            bad.append('unexpected task {}'.format(r['task']))
            continue
        got = [(i['key']['type'], i['key']['b64'], i['value']['type'], i['value'].get('b64')) for i in r['items']]
        want = G.want_items(job, task_name=r['task'])
        if job['spooler_dir'] == 'B' or G.has_var(job, 'spooler'):
            want = _with_our_b(want, produced.b)
        if got != want:
            bad.append('{}: dict differs\n  got  {}\n  want {}'.format(job['id'], got[:6], want[:6]))
    assert not bad, '\n'.join(bad)
    assert seen == {n: 1 for n in expect}, 'not every file ran exactly once: %s' % (set(expect) ^ set(seen))


def _with_our_b(items, our_b: Path):
    import base64

    gold = base64.b64encode(GOLDEN_B.encode()).decode()
    ours = base64.b64encode(str(our_b).encode()).decode()
    return [(kt, kb, vt, ours if vb == gold else vb) for kt, kb, vt, vb in items]
