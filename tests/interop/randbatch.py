"""Seeded random spool tasks for the two-way interop test (stdlib only).

A batch is a list of (vars, body): vars an ordered list of (bytes key, bytes value) with unique,
non-empty keys (the first is always b'id'), body bytes or b''. Some tasks carry a numeric
`priority`; none carries `spooler` or `at`.
"""

from __future__ import annotations

import random

SPECIAL = {b'body', b'spooler', b'priority', b'at'}


def _blob(rnd: random.Random, lo: int, hi: int) -> bytes:
    n = rnd.randint(lo, hi)
    kind = rnd.random()
    if kind < 0.3:
        return bytes(rnd.getrandbits(8) for _ in range(n))  # anything, NUL and non-UTF-8 included
    if kind < 0.6:
        return ''.join(rnd.choice('aé✓ключ z_-0') for _ in range(n)).encode()[:hi] or b'x'
    return bytes(rnd.choice(b'abcdefghijklmnopqrstuvwxyz0123456789_') for _ in range(n))


def make_batch(seed: int, n: int) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        vars_ = [(b'id', b'%d' % i)]
        keys = {b'id'}
        for _ in range(rnd.choice([0, 1, 2, 3, 5, 12])):
            k = _blob(rnd, 1, 24)
            if k in keys or k in SPECIAL:
                continue
            keys.add(k)
            big = rnd.random() < 0.03
            vars_.append((k, _blob(rnd, 0, 20000 if big else 60)))
        if rnd.random() < 0.1:
            pos = rnd.randint(1, len(vars_))
            vars_.insert(pos, (b'priority', b'%d' % rnd.choice([0, 1, 2, 7, 10, 42])))
        body = _blob(rnd, 1, rnd.choice([10, 300, 70000])) if rnd.random() < 0.35 else b''
        out.append((vars_, body))
    return out
