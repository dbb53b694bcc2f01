# Spooler-import module (real uWSGI or ours) for the writer-crash test: checks that the task's
# body is complete (declared length `len`, ends with its own id) and logs "ok <id>" or
# "BAD <id> <why>" to $CHECK_DIR/checked.
import os

import uwsgi

_DIR = os.environ['CHECK_DIR']


def _check(env):
    tid = env.get(b'id', b'?')
    body = env.get('body', b'')
    want = int(env.get(b'len', b'-1'))
    if len(body) != want:
        line = b'BAD %s len %d != %d\n' % (tid, len(body), want)
    elif not body.endswith(tid):
        line = b'BAD %s tail\n' % tid
    else:
        line = b'ok %s\n' % tid
    fd = os.open(os.path.join(_DIR, 'checked'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return uwsgi.SPOOL_OK


uwsgi.spooler = _check
