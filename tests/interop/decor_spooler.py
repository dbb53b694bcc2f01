# Spooler-import module for our master (and, unmodified, for real uWSGI): registers the same
# uwsgidecorators functions as golden/producer_app.py (same names, so golden d* files dispatch
# to them) and records what each receives as one JSON line in $DECOR_OUT.
import json
import os

import uwsgi
from uwsgidecorators import spool, spoolforever, spoolraw

_OUT = os.environ['DECOR_OUT']


def _items(d):
    return [[repr(k), repr(v)] for k, v in sorted(d.items(), key=lambda kv: repr(kv[0]))]


def _log(fn, **rec):
    rec.update(fn=fn, pid=os.getpid(), cwd=os.getcwd())
    fd = os.open(_OUT, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (json.dumps(rec, ensure_ascii=False, sort_keys=True) + '\n').encode('utf-8'))
    finally:
        os.close(fd)


@spool
def d_task(arguments):
    _log('d_task', mode='dict', items=_items(arguments))


@spool(pass_arguments=True)
def d_args(*args, **kwargs):
    _log('d_args', mode='pass_arguments', args_repr=repr(args), kwargs_repr=repr(kwargs))


@spoolforever
def d_forever(arguments):
    _log('d_forever', mode='dict', items=_items(arguments))


@spoolraw
def d_raw(arguments):
    _log('d_raw', mode='dict', items=_items(arguments))
    return uwsgi.SPOOL_OK


@spoolraw(pass_arguments=True)
def d_raw_args(*args, **kwargs):
    _log('d_raw_args', mode='pass_arguments', args_repr=repr(args), kwargs_repr=repr(kwargs))
    return uwsgi.SPOOL_OK
