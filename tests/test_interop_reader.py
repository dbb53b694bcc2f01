"""Interop, read side: spool files written by the real uWSGI are executed by OUR spooler with
exactly the `uwsgi.spooler` dict real uWSGI passes (SPEC 3.1): same keys, key and value types,
values and order.

Two sources: (a) the golden files in tests/golden/files, placed under their real
names (priority subdirs, `at` mtimes) as verify_roundtrip.py does; (b) files freshly produced by
real uWSGI on this machine with golden/produce_with_uwsgi.sh. The spooler function is
golden/consumer_spooler.py itself, loaded unmodified by our master with --spooler-import.

Our documented divergences from uWSGI, asserted here:
* the file with a zero-length key (r17) is moved to <dir>/quarantine/, not silently deleted;
* future-`at` files and the non-numeric priority dir `high` are left in place (as uWSGI does).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from interop import golden as G
from interop import procs as P

FREQ = '1'


@dataclass
class Run:
    source: str
    src_dir: Path
    manifest: dict
    placed: dict  # real name -> job
    spool: Path
    records: list
    log: str
    start: float


def _run_ours_over(group, consumer_py: Path, spool: Path, out: Path, placed: dict, start: float) -> list:
    must_run = {name for name, job in placed.items() if G.expected(job, 'ours', start) == G.CONSUMED}
    m = group.master(
        ['--spooler', spool, '--spooler-import', consumer_py, '--spooler-frequency', FREQ, '--spooler-ordered'],
        env={'UWSGI_GOLDEN_OUT': out, 'UWSGI_GOLDEN_RET': '-2'},
        name='ours-consumer',
    )
    P.wait_until(
        lambda: must_run <= {r['task'] for r in P.read_jsonl(out)},
        45,
        f'our spooler to run {len(must_run)} golden files',
        [m],
    )
    time.sleep(2.5)  # two more scan periods: nothing may run twice, nothing else may run
    m.stop()
    return P.read_jsonl(out)


@pytest.fixture(scope='module', params=['golden', 'fresh'])
def reader_run(request, golden_dir, manifest, tmp_path_factory):
    base = Path(os.path.realpath(tmp_path_factory.mktemp(f'reader-{request.param}')))
    group = P.ProcGroup(base / 'logs')
    try:
        if request.param == 'golden':
            src_dir, man = golden_dir, manifest
        else:
            # (b) real uWSGI writes a new set of files right now (its own B dir, which must not exist yet)
            src_dir = base / 'fresh'
            prod = group.start(
                ['bash', str(golden_dir / 'produce_with_uwsgi.sh'), str(src_dir)],
                name='produce_with_uwsgi',
                env=P.uwsgi_env({'GOLDEN_SPOOL_B_DIR': str(base / 'B'), 'TMPDIR': str(base)}),
            )
            rc = prod.wait(90)
            prod.stop()
            assert rc == 0, f'produce_with_uwsgi.sh failed ({rc}):\n{prod.tail()}'
            man = G.load_manifest(src_dir)
            assert len(G.file_jobs(man)) == len(G.file_jobs(manifest))
        spool = base / 'spool'
        spool.mkdir()
        start = time.time()
        placed = G.place(src_dir, man, spool, golden_dir)
        out = base / 'out.jsonl'
        records = _run_ours_over(group, golden_dir / 'consumer_spooler.py', spool, out, placed, start)
        log = '\n'.join(p.log() for p in group.procs if p.name.startswith('ours'))
        yield Run(request.param, Path(src_dir), man, placed, spool, records, log, start)
    finally:
        group.close()


def _quarantined_contents(spool: Path) -> list[bytes]:
    q = spool / 'quarantine'
    if not q.is_dir():
        return []
    return [p.read_bytes() for p in q.iterdir() if p.is_file() and not p.name.endswith('.reason')]


def _actual(run: Run, name: str, job: dict, by_task: dict) -> str:
    if name in by_task:
        return G.CONSUMED
    sub = job['priority_subdir']
    where = run.spool / sub / name if sub else run.spool / name
    if where.exists():
        return G.LEFT
    data = (run.src_dir / job['file']).read_bytes()
    return G.QUARANTINED if data in _quarantined_contents(run.spool) else G.DELETED


def test_every_file_has_the_expected_outcome(reader_run):
    by_task = {}
    for r in reader_run.records:
        by_task.setdefault(r['task'], []).append(r)
    report, bad = [], []
    for name, job in sorted(reader_run.placed.items(), key=lambda kv: kv[1]['id']):
        want = G.expected(job, 'ours', reader_run.start)
        got = _actual(reader_run, name, job, by_task)
        report.append(f'{job["id"]:<32} expected={want:<22} actual={got}')
        if want != got:
            bad.append(job['id'])
    assert not bad, 'outcomes differ for {}:\n{}\n{}'.format(bad, '\n'.join(report), reader_run.log[-3000:])
    assert len(reader_run.placed) == 42


def test_dicts_are_exactly_uwsgis(reader_run):
    """Same keys, types, values and order as the real python3 plugin's dict (uwsgi_plugin_dict)."""
    by_task = {r['task']: r for r in reader_run.records}
    checked, bad = 0, []
    for name, job in reader_run.placed.items():
        if name not in by_task:
            continue
        got = [tuple(x) for x in _strip(by_task[name]['items'])]
        want = G.want_items(job)
        if got != want:
            bad.append('{}:\n  got  {}\n  want {}'.format(job['id'], _short(got), _short(want)))
        checked += 1
    assert not bad, '\n'.join(bad)
    assert checked == sum(
        1 for j in reader_run.placed.values() if G.expected(j, 'ours', reader_run.start) == 'consumed'
    )


def test_each_file_runs_exactly_once(reader_run):
    counts = {}
    for r in reader_run.records:
        counts[r['task']] = counts.get(r['task'], 0) + 1
    assert {t: c for t, c in counts.items() if c != 1} == {}
    unknown = set(counts) - set(reader_run.placed)
    assert not unknown, f'tasks that were never placed ran: {unknown}'


def test_consumed_files_are_deleted_and_the_rest_kept(reader_run):
    files = G.all_files(reader_run.spool)
    ran = {r['task'] for r in reader_run.records}
    assert not ran & set(files.values()), 'SPOOL_OK tasks still on disk'
    for name, job in reader_run.placed.items():
        if G.expected(job, 'ours', reader_run.start) == G.LEFT:
            sub = job['priority_subdir']
            p = reader_run.spool / sub / name if sub else reader_run.spool / name
            assert p.exists(), '{} vanished'.format(job['id'])


def test_zero_length_key_is_quarantined_with_a_reason(reader_run):
    """Divergence from uWSGI (which deletes r17 silently): it is moved to <dir>/quarantine/."""
    job = next(j for j in reader_run.placed.values() if j.get('reader_error'))
    q = reader_run.spool / 'quarantine'
    assert q.is_dir(), f'no quarantine dir; spool holds {sorted(G.all_files(reader_run.spool))}'
    entries = [p for p in q.iterdir() if not p.name.endswith('.reason')]
    assert len(entries) == 1, entries
    assert entries[0].read_bytes() == (reader_run.src_dir / job['file']).read_bytes()
    reasons = [p for p in q.iterdir() if p.name.endswith('.reason')]
    assert reasons and reasons[0].read_text().strip(), 'quarantine without a reason file'


def test_task_cwd_is_the_files_directory(reader_run):
    """SPEC 2.3: during a task the cwd is the directory holding the file (the priority dir)."""
    bad = []
    for r in reader_run.records:
        job = reader_run.placed.get(r['task'])
        if job is None:
            continue
        want = job['priority_subdir'] or reader_run.spool.name
        if r['cwd'] != want:
            bad.append('{}: cwd {}, want {}'.format(job['id'], r['cwd'], want))
    assert not bad, bad


def _strip(items):
    return [(i['key']['type'], i['key']['b64'], i['value']['type'], i['value'].get('b64')) for i in items]


def _short(items):
    return json.dumps([(a, b[:24], c, (d or '')[:24]) for a, b, c, d in items])
