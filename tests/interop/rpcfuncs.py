"""RPC functions registered the same way in real uWSGI and in our master (``--import rpcfuncs``)."""

import os

import uwsgi


def hello(*args):
    return b'hello:' + b','.join(args)


def count(*args):
    return str(len(args)).encode()


def echo(*args):
    return b''.join(args)


def big(*args):
    return b'B' * 70000


def empty(*args):
    return b''


def strret(*args):
    return 'str'


def boom(*args):
    raise RuntimeError('boom')


def whoami(*args):
    return str(os.getpid()).encode()


for _f in (hello, count, echo, big, empty, strret, boom, whoami):
    uwsgi.register_rpc(_f.__name__, _f)
