"""Imported by real uWSGI (``--import rpcclient``): calls the node in RPC_NODE with uWSGI's own
``uwsgi.rpc`` and writes what came back to RPC_OUT (JSON: case -> base64 or null)."""

import base64
import json
import os

import uwsgi

NODE = os.environ['RPC_NODE'].encode()
BINARY = bytes(range(256)) + b'\x00\x00\xff'
LARGEST = b'\x00\xfe' * (65527 // 2) + b'\x01'  # 2 + len('echo') + 2 + 65527 = 65535

CASES = {
    'two_args': (b'hello', b'a', b'bc'),
    'no_args': (b'hello',),
    'count_three': (b'count', b'x', b'y', b'z'),
    'binary': (b'echo', BINARY),
    'binary_split': (b'echo', BINARY[:100], BINARY[100:]),
    'largest_request': (b'echo', LARGEST),
    'big_reply': (b'big',),
    'empty': (b'empty',),
    'strret': (b'strret',),
    'raises': (b'boom',),
    'unknown': (b'nope',),
}

out = {}
for case, call in CASES.items():
    got = uwsgi.rpc(NODE, *call)
    out[case] = None if got is None else base64.b64encode(got).decode()
with open(os.environ['RPC_OUT'] + '.tmp', 'w') as f:
    json.dump(out, f)
os.rename(os.environ['RPC_OUT'] + '.tmp', os.environ['RPC_OUT'])
