# Spooler-import module for the fault tests. Logs "start <id> <pid>" and "done <id> <pid>" lines
# to $FAULT_DIR/events. A task with var block=1 waits (at most 60 s) for the file
# $FAULT_DIR/release.<id> before it finishes, so a test can kill its process mid-task; one with
# var sleep=S sleeps S seconds first.
import os
import time

import uwsgi

_DIR = os.environ['FAULT_DIR']


def _log(line):
    fd = os.open(os.path.join(_DIR, 'events'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _task(env):
    tid = env[b'id'].decode()
    _log(f'start {tid} {os.getpid()}\n')
    if b'sleep' in env:
        time.sleep(float(env[b'sleep']))
    if env.get(b'block') == b'1':
        marker = os.path.join(_DIR, 'release.' + tid)
        end = time.monotonic() + 60
        while not os.path.exists(marker) and time.monotonic() < end:
            time.sleep(0.01)
    _log(f'done {tid} {os.getpid()}\n')
    return uwsgi.SPOOL_OK


uwsgi.spooler = _task
