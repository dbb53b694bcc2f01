"""Turn-taking enqueue driver for bench_spool.py: real uWSGI (this script as a mule) and ours (this
script in a plain process with our `uwsgi` shim) take turns, one block of `uwsgi.spool` calls each,
so that the stalls of this shared disk hit both writers alike. Only the blocks are timed; the
hand-over (a token file) is not.

TURN_DIR shared scratch directory, TURN_ME `uwsgi` or `ours` (uwsgi starts), TURN_BLOCKS turns
each (40), TURN_BLOCK calls per turn (500), TURN_STOP_SPOOLER=1 to SIGSTOP uWSGI's own spooler
(ours is stopped by the driver). Each side writes its block times to TURN_DIR/times.<me>; the
mule then sleeps (uWSGI would respawn a mule that exits).
"""

import os
import signal
import time

import uwsgi

ROOT = os.environ['TURN_DIR']
ME = os.environ['TURN_ME']
OTHER = 'ours' if ME == 'uwsgi' else 'uwsgi'
BLOCKS = int(os.environ.get('TURN_BLOCKS', '40'))
BLOCK = int(os.environ.get('TURN_BLOCK', '500'))
PAYLOAD = {f'key{i}'.encode(): (f'v{i:02d}' * 5 + 'x' * 5).encode() for i in range(5)}  # bench 1's

if os.environ.get('TURN_STOP_SPOOLER') == '1' and uwsgi.spooler_pid():
    os.kill(uwsgi.spooler_pid(), signal.SIGSTOP)


def token(who: str, k: int) -> str:
    return os.path.join(ROOT, f'turn.{who}.{k}')


def wait_for(path: str) -> None:
    end = time.monotonic() + 300
    while not os.path.exists(path):
        if time.monotonic() > end:
            raise SystemExit(f'enq_turns: no {path} after 300 s')
        time.sleep(0.0005)


uwsgi.spool(PAYLOAD)  # warm-up
open(os.path.join(ROOT, f'ready.{ME}'), 'w').close()
wait_for(os.path.join(ROOT, f'ready.{OTHER}'))
times = []
for k in range(BLOCKS):
    if ME == 'ours' or k > 0:
        wait_for(token(ME, k))
    t0 = time.perf_counter()
    for _ in range(BLOCK):
        uwsgi.spool(PAYLOAD)
    times.append(time.perf_counter() - t0)
    open(token(OTHER, k if ME == 'uwsgi' else k + 1), 'w').close()
tmp = os.path.join(ROOT, f'.times.{ME}')
with open(tmp, 'w') as f:
    f.write(' '.join(f'{t:.6f}' for t in times))
os.rename(tmp, os.path.join(ROOT, f'times.{ME}'))
while ME == 'uwsgi':
    time.sleep(3600)
