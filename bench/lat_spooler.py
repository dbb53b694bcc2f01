# Spooler-import module for bench_spool.py's latency measures, loaded unmodified by real uWSGI
# and by our master. A task {kind: probe, i, t0} appends "probe <i> <t0> <t1>" to
# $LAT_OUT/lat.txt (t1 = time.monotonic() at handler start) and touches done.<i>; a task
# {kind: long, i, dur} touches long.<i>, sleeps dur seconds and appends "long <i> <start> <end>".
import os
import time

import uwsgi

_OUT = os.environ['LAT_OUT']


def _append(line):
    fd = os.open(os.path.join(_OUT, 'lat.txt'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _touch(name):
    os.close(os.open(os.path.join(_OUT, name), os.O_WRONLY | os.O_CREAT, 0o644))


def _handler(env):
    t1 = time.monotonic()
    i = env[b'i'].decode()
    if env.get(b'kind') == b'long':
        _touch('long.' + i)
        time.sleep(float(env[b'dur']))
        _append(f'long {i} {t1:.6f} {time.monotonic():.6f}\n')
    else:
        _append('probe {} {} {:.6f}\n'.format(i, env[b't0'].decode(), t1))
        _touch('done.' + i)
    return uwsgi.SPOOL_OK


uwsgi.spooler = _handler
_touch(f'ready.{os.getpid()}')
