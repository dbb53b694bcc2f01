"""A small, independent (stdlib only) model of uWSGI's spool file format (SPEC.md 1-2).

Used to prefill spool directories and to check files written by either implementation
without going through the code under test.
"""

from __future__ import annotations

import base64
import os
import random
import socket
import struct
import time
from collections.abc import Iterable

PREFIX = b'uwsgi_spoolfile_on_'
MODIFIER1 = 17

_counter = 0


def encode(vars: Iterable[tuple[bytes, bytes]], body: bytes = b'') -> bytes:
    block = bytearray()
    for k, v in vars:
        if len(k) > 0xFFFF or len(v) > 0xFFFF:
            raise ValueError('key or value over 65535 bytes')
        block += struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v
    if len(block) > 0xFFFF:
        raise ValueError('vars block over 65535 bytes')
    return struct.pack('<BHB', MODIFIER1, len(block), 0) + bytes(block) + body


def decode(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """uWSGI's reader rules (uwsgi_hooked_parse); raises ValueError on any violation."""
    if len(data) < 4:
        raise ValueError(f'short header ({len(data)} bytes)')
    _m1, size, _m2 = struct.unpack('<BHB', data[:4])
    if len(data) < 4 + size:
        raise ValueError(f'vars block truncated: {len(data) - 4} of {size} bytes')
    block, body = data[4 : 4 + size], data[4 + size :]
    out, i = [], 0
    while i < size:
        if size - i < 3:
            raise ValueError(f'dangling {size - i} bytes at offset {i}')
        (kl,) = struct.unpack_from('<H', block, i)
        i += 2
        if kl == 0:
            raise ValueError(f'zero-length key at offset {i - 2}')
        if i + kl + 2 > size:
            raise ValueError(f'key runs past the block at offset {i}')
        k = block[i : i + kl]
        i += kl
        (vl,) = struct.unpack_from('<H', block, i)
        i += 2
        if i + vl > size:
            raise ValueError(f'value runs past the block at offset {i}')
        out.append((bytes(k), bytes(block[i : i + vl])))
        i += vl
    return out, bytes(body)


def task_name() -> str:
    """A fresh name in uWSGI's format (host_pid_counter_rand_sec_usec)."""
    global _counter
    _counter += 1
    now = time.time()
    sec, usec = int(now), int((now % 1) * 1e6)
    return f'uwsgi_spoolfile_on_{socket.gethostname()}_{os.getpid()}_{_counter}_{random.randrange(2**31)}_{sec}_{usec}'


def write_task(directory: str, vars: Iterable[tuple[bytes, bytes]], body: bytes = b'') -> str:
    """Write one complete task atomically (temp name outside the reader's prefix, then rename)."""
    data = encode(vars, body)
    name = task_name()
    tmp = os.path.join(directory, '.tmp-' + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    path = os.path.join(directory, name)
    os.rename(tmp, path)
    return path


def runnable_files(directory: str) -> list[str]:
    """Spool files a reader would consider: top level plus numeric priority subdirectories."""
    out = []
    for entry in os.scandir(directory):
        if entry.is_file(follow_symlinks=False) and entry.name.startswith(PREFIX.decode()):
            out.append(entry.path)
        elif entry.is_dir(follow_symlinks=False) and entry.name.isdigit():
            out.extend(
                e.path
                for e in os.scandir(entry.path)
                if e.is_file(follow_symlinks=False) and e.name.startswith(PREFIX.decode())
            )
    return out


def enc_item(obj) -> dict:
    """Same typing as golden/consumer_spooler.py's _enc, restricted to type and bytes."""
    if isinstance(obj, (bytes, bytearray)):
        return {'type': 'bytes', 'b64': base64.b64encode(bytes(obj)).decode('ascii')}
    if isinstance(obj, str):
        return {'type': 'str', 'b64': base64.b64encode(obj.encode('utf-8', 'surrogateescape')).decode('ascii')}
    return {'type': type(obj).__name__, 'repr': repr(obj)}


def strip_items(items: list[dict]) -> list[tuple]:
    """(key type, key b64, value type, value b64) per item, order kept: the comparison form."""
    return [(i['key']['type'], i['key']['b64'], i['value']['type'], i['value'].get('b64')) for i in items]
