# Spooler-import module loaded, unmodified, by real uWSGI and by our master: appends each
# task's `id` var to $REC_DIR/ids.<REC_TAG>.<pid>, optionally working REC_SLEEP seconds, and
# returns SPOOL_OK. At import it leaves $REC_DIR/ready.<REC_TAG>.<pid>.
import os
import time

import uwsgi

_DIR = os.environ['REC_DIR']
_TAG = os.environ.get('REC_TAG', 'x')
_SLEEP = float(os.environ.get('REC_SLEEP', '0'))
_fd = None


def _record(env):
    global _fd
    if _fd is None:
        _fd = os.open(os.path.join(_DIR, f'ids.{_TAG}.{os.getpid()}'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_fd, env[b'id'] + b'\n')
    if _SLEEP:
        time.sleep(_SLEEP)
    return uwsgi.SPOOL_OK


uwsgi.spooler = _record
open(os.path.join(_DIR, f'ready.{_TAG}.{os.getpid()}'), 'w').close()
