# Enqueues a random batch (randbatch.make_batch) with `uwsgi.spool`, in order, and writes the
# returned paths, one per line, to $BATCH_OUT/paths, then $BATCH_OUT/written.done.
# Loaded by real uWSGI's master (--import) and run as a plain process with our `uwsgi` shim.
import os
import sys

import uwsgi

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from interop.randbatch import make_batch

_out = os.environ['BATCH_OUT']
_paths = []
for _vars, _body in make_batch(int(os.environ['BATCH_SEED']), int(os.environ['BATCH_N'])):
    _d = dict(_vars)
    if _body:
        _d[b'body'] = _body
    _paths.append(uwsgi.spool(_d))
with open(os.path.join(_out, 'paths'), 'wb') as _f:
    _f.write(b''.join(p + b'\n' for p in _paths))
open(os.path.join(_out, 'written.done'), 'w').close()
