"""Paired enqueue driver for bench_spool.py: in ONE process, alternate blocks of `uwsgi.spool`
(ours, through the `uwsgi` shim) and of the filesystem floor (create+write+close of a file of the
same size and name length, from Python), so that disk stalls of this shared machine hit both
alike. Prints one JSON line: per-block rates and the median of the per-pair ratios.

ENQ_DIR a scratch directory, ENQ_BLOCKS pairs (40), ENQ_BLOCK calls per block (500).
"""

import json
import os
import statistics
import time

ROOT = os.environ['ENQ_DIR']
BLOCKS = int(os.environ.get('ENQ_BLOCKS', '40'))
BLOCK = int(os.environ.get('ENQ_BLOCK', '500'))
ours_dir = os.path.join(ROOT, 'ours')
floor_dir = os.path.join(ROOT, 'floor')
os.makedirs(ours_dir)
os.makedirs(floor_dir)
os.environ['UWSGIDECORATORS_SPOOLERS'] = ours_dir

import uwsgi  # noqa: E402  (our shim; it reads the spool directory from the environment)

PAYLOAD = {f'key{i}'.encode(): (f'v{i:02d}' * 5 + 'x' * 5).encode() for i in range(5)}  # bench 1's
first = uwsgi.spool(PAYLOAD)
DATA = open(first, 'rb').read()
NAME_LEN = len(os.path.basename(first))


def ours():
    spool = uwsgi.spool
    for _ in range(BLOCK):
        spool(PAYLOAD)


counter = [0]


def floor():
    for _ in range(BLOCK):
        counter[0] += 1
        name = os.path.join(floor_dir, f'f{counter[0]}'.rjust(NAME_LEN, 'x'))
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, DATA)
        os.close(fd)


rates = {'ours': [], 'floor': []}
for i in range(BLOCKS):
    order = (ours, floor) if i % 2 == 0 else (floor, ours)
    for fn in order:
        t0 = time.perf_counter()
        fn()
        rates[fn.__name__].append(BLOCK / (time.perf_counter() - t0))
ratios = [o / f for o, f in zip(rates['ours'], rates['floor'])]
print(
    json.dumps(
        {
            'ours_per_s': statistics.median(rates['ours']),
            'floor_create_per_s': statistics.median(rates['floor']),
            'ratio_median': statistics.median(ratios),
            'ratio_p25': statistics.quantiles(ratios, n=4)[0],
            'ratio_p75': statistics.quantiles(ratios, n=4)[2],
            'blocks': BLOCKS,
            'block': BLOCK,
        }
    )
)
