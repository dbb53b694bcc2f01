"""Enqueues big tasks through our `uwsgi` shim until killed (the writer-crash test kills it
with SIGKILL). After each uwsgi.spool() returns, the id is appended to <out>/written.

usage: flood_writer.py OUT_DIR BODY_BYTES   (the spool dir comes from UWSGIDECORATORS_SPOOLERS)
"""

import os
import sys

import uwsgi

out, size = sys.argv[1], int(sys.argv[2])
block = os.urandom(size)
fd = os.open(os.path.join(out, 'written'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
n = 0
while True:
    n += 1
    tid = b'%d-%d' % (os.getpid(), n)
    body = block + tid
    uwsgi.spool({b'id': tid, b'len': str(len(body)).encode(), b'body': body})
    os.write(fd, tid + b'\n')
