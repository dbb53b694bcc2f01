"""Latency driver for bench_spool.py: enqueues probes with `uwsgi.spool` and lets lat_spooler.py
time them. Runs as a uWSGI mule (real uWSGI: its writer wakes the spooler with SIGUSR1) or as a
plain process with our `uwsgi` shim (our spooler is woken by inotify).

LAT_OUT dir, LAT_MODE idle|busy, LAT_N probes, LAT_LONG seconds of the long task (busy),
LAT_FOREVER=1 to sleep after the run (a mule must not exit or uWSGI respawns it).
idle: one probe every 30-70 ms (random, seeded), as bench/uwsgi_harness bench 3.
busy: a long task is enqueued, and once it runs a probe is enqueued LAT_LONG/4 later; the
      next pair starts when the probe has run (or after a 120 s cap).
"""

import os
import random
import time

import uwsgi

OUT = os.environ['LAT_OUT']
MODE = os.environ.get('LAT_MODE', 'idle')
N = int(os.environ.get('LAT_N', '200'))
LONG = float(os.environ.get('LAT_LONG', '0.2'))
now = time.monotonic


def exists(name):
    return os.path.exists(os.path.join(OUT, name))


def wait(name, timeout):
    end = now() + timeout
    while not exists(name) and now() < end:
        time.sleep(0.0005)
    return exists(name)


end = now() + 60
while not any(n.startswith('ready.') for n in os.listdir(OUT)) and now() < end:
    time.sleep(0.05)
time.sleep(1.0)
rnd = random.Random(1)
for i in range(N):
    if MODE == 'idle':
        time.sleep(rnd.uniform(0.03, 0.07))
        uwsgi.spool({b'kind': b'probe', b'i': b'%d' % i, b't0': b'%.6f' % now()})
    else:
        uwsgi.spool({b'kind': b'long', b'i': b'%d' % i, b'dur': b'%g' % LONG})
        if not wait(f'long.{i}', 120):
            continue
        time.sleep(LONG / 4)
        uwsgi.spool({b'kind': b'probe', b'i': b'%d' % i, b't0': b'%.6f' % now()})
        wait(f'done.{i}', 120)
        time.sleep(0.02)
# Report only once the last probe has started: the driver's own wind-down (writing lat.sent,
# and for ours the exit of this process) must not overlap a measured probe.
wait(f'done.{N - 1}', 10)
tmp = os.path.join(OUT, '.lat.sent')
with open(tmp, 'w') as f:
    f.write(f'{N}\n')
os.rename(tmp, os.path.join(OUT, 'lat.sent'))
while os.environ.get('LAT_FOREVER') == '1':
    time.sleep(3600)
