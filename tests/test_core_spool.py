"""The raw `_core` spool API: codec properties, writer, reader and the Spooler queue."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from uwsgidecorators import _core
from uwsgidecorators.exceptions import SpoolPacketError, SpoolTooLargeError

keys = st.binary(min_size=1, max_size=64)
values = st.binary(max_size=512)
var_lists = st.lists(st.tuples(keys, values), max_size=40)


@given(var_lists, st.binary(max_size=2048))
def test_encode_decode_roundtrip(vars_, body):
    data = _core.encode_spool(vars_, body)
    assert data[0] == 17 and data[3] == 0
    assert int.from_bytes(data[1:3], 'little') == len(data) - 4 - len(body)
    got_vars, got_body = _core.decode_spool(data)
    assert got_vars == vars_
    assert got_body == body
    assert _core.encode_spool(got_vars, got_body) == data


@given(st.binary(max_size=300))
def test_decode_arbitrary_bytes_is_a_dict_or_a_clean_error(data):
    try:
        vars_, body = _core.decode_spool(data)
    except SpoolPacketError as e:
        assert isinstance(e, ValueError)
        assert str(e)
    else:
        assert isinstance(body, bytes)
        assert all(isinstance(k, bytes) and k and isinstance(v, bytes) for k, v in vars_)


@given(st.integers(min_value=65536, max_value=70000))
def test_values_over_64k_raise_instead_of_truncating(n):
    with pytest.raises(SpoolTooLargeError, match='65535'):
        _core.encode_spool([(b'big', b'y' * n)])


def test_vars_block_limit_is_exact():
    assert len(_core.encode_spool([(b'a', b'x' * 65530)])) == 65539
    with pytest.raises(SpoolTooLargeError, match='body'):
        _core.encode_spool([(b'a', b'x' * 65531)])


def test_bad_var_types_are_type_errors():
    with pytest.raises(TypeError, match='bytes'):
        _core.encode_spool([('a', b'1')])
    with pytest.raises(TypeError, match='pairs'):
        _core.encode_spool([(b'a',)])


@given(var_lists.filter(lambda v: not any(k in (b'priority', b'at') for k, _ in v)), st.binary(max_size=256))
def test_written_file_reads_back_as_plugin_dict(tmp_path_factory, vars_, body):
    d = tmp_path_factory.mktemp('spool')
    path = _core.spool_write(str(d), vars_, body)
    assert os.path.dirname(path) == str(d).encode()
    assert Path(os.fsdecode(path)).read_bytes() == _core.encode_spool(vars_, body)
    got = _core.spool_read(path)
    expected = {'spooler_task_name': os.path.basename(path)}
    expected.update(dict(vars_))
    if body:
        expected['body'] = body
    assert got == expected
    assert list(got) == list(expected)


def test_writer_refuses_non_numeric_priority_and_bad_at(tmp_path):
    with pytest.raises(ValueError, match='priority'):
        _core.spool_write(str(tmp_path), [(b'priority', b'high')])
    with pytest.raises(ValueError, match="'at'"):
        _core.spool_write(str(tmp_path), [(b'at', b'soon')])
    assert list(tmp_path.iterdir()) == []


def test_spooler_claims_in_priority_order_and_outcomes(tmp_path):
    d = str(tmp_path)
    top = _core.spool_write(d, [(b'n', b'top')])
    p5 = _core.spool_write(d, [(b'priority', b'5')])
    p1 = _core.spool_write(d, [(b'priority', b'1')])
    sp = _core.Spooler(d, frequency=30)
    seen = []
    for _ in range(3):
        task = sp.next_task(5)
        assert task is not None
        seen.append(task.path)
        task.ok()
    assert seen == [p1, p5, top]
    assert sp.next_task(0.05) is None


def test_ok_deletes_the_file_once_flushed_and_it_is_not_run_again(tmp_path):
    paths = [_core.spool_write(str(tmp_path), [(b'n', str(i).encode())]) for i in range(20)]
    sp = _core.Spooler(str(tmp_path), frequency=30)
    for _ in paths:
        sp.next_task(5).ok()
    # Deletion runs on the reaper threads; until then the files stay locked and skipped.
    assert sp.next_task(0.05) is None
    sp.flush()
    assert not any(os.path.exists(p) for p in paths)


def test_share_must_name_one_of_count(tmp_path):
    with pytest.raises(ValueError, match='share'):
        _core.Spooler(str(tmp_path), share=(2, 2))
    with pytest.raises(ValueError, match='share'):
        _core.Spooler(str(tmp_path), share=(0, 0))


def test_task_outcome_is_given_once(tmp_path):
    _core.spool_write(str(tmp_path), [(b'a', b'1')])
    task = _core.Spooler(str(tmp_path)).next_task(5)
    task.retry()
    with pytest.raises(ValueError, match='already'):
        task.ok()


def test_retry_moves_mtime_forward_and_keeps_file(tmp_path):
    path = _core.spool_write(str(tmp_path), [(b'a', b'1')])
    sp = _core.Spooler(str(tmp_path), frequency=30)
    at = sp.next_task(5).retry()
    assert os.stat(path).st_mtime == at
    assert at >= time.time() + 29
    # Not runnable again before then, by this spooler or another one.
    assert sp.next_task(0.1) is None
    assert _core.Spooler(str(tmp_path)).next_task(0.1) is None


def test_next_task_wait_is_woken_from_another_thread(tmp_path):
    sp = _core.Spooler(str(tmp_path))
    threading.Timer(0.2, sp.wake).start()
    t0 = time.monotonic()
    assert sp.next_task(30) is None
    assert time.monotonic() - t0 < 20


def test_task_written_by_another_thread_wakes_the_wait(tmp_path):
    sp = _core.Spooler(str(tmp_path))
    threading.Timer(0.2, lambda: _core.spool_write(str(tmp_path), [(b'x', b'y')])).start()
    task = sp.next_task(30)
    assert task is not None and task.vars == [(b'x', b'y')]


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        _core.Spooler(str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='frequency'):
        _core.Spooler(str(tmp_path), frequency=-1)
    with pytest.raises(ValueError, match='timeout'):
        _core.Spooler(str(tmp_path)).next_task(-1)


def test_recv_signals_reads_private_channel_whole_and_shared_queue_one_at_a_time():
    import socket

    priv_m, priv_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    queue_m, queue_w = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    r, w = os.pipe()
    try:
        priv_m.send(b'\x01')
        priv_m.send(b'\x02')
        queue_m.send(b'\x03')
        queue_m.send(b'\x04')
        got = _core.recv_signals(priv_w.fileno(), queue_w.fileno(), r, 5)
        assert sorted(got) == [1, 2, 3]  # one datagram of the shared queue: the rest is others'
        assert _core.recv_signals(priv_w.fileno(), queue_w.fileno(), r, 5) == b'\x04'
        assert _core.recv_signals(priv_w.fileno(), queue_w.fileno(), r, 0.05) == b''
        os.write(w, b'x')  # the wake-up fd: an empty answer at once
        t0 = time.monotonic()
        assert _core.recv_signals(priv_w.fileno(), queue_w.fileno(), r, 30) == b''
        assert time.monotonic() - t0 < 20
    finally:
        for s in (priv_m, priv_w, queue_m, queue_w):
            s.close()
        os.close(r)
        os.close(w)


def test_spool_job_fast_path_writes_what_spool_write_writes(tmp_path):
    d = str(tmp_path)
    job = {b'a': b'1', b'body': b'\x00raw', b'priority': b'3', b'b': b''}
    path = _core.spool_job(job, [d.encode()])
    assert b'body' not in job, "uWSGI takes a bytes body out of the caller's dict"
    assert os.path.dirname(path) == os.path.join(d, '3').encode()
    data = open(path, 'rb').read()
    assert data == _core.encode_spool([(b'a', b'1'), (b'priority', b'3'), (b'b', b'')], b'\x00raw')
    dated = _core.spool_job({b'at': b'1900000000.5', b'c': b'2'}, [d.encode()])
    assert os.stat(dated).st_mtime == 1900000000
    with pytest.raises(ValueError, match="'at' must be a unix timestamp"):
        _core.spool_job({b'at': b'soon'}, [d.encode()])


@pytest.mark.parametrize(
    'job',
    [
        {'a': b'1'},  # str key: uWSGI's error comes from the shim
        {b'a': '1'},  # str value
        {b'a': bytearray(b'1')},  # converted by the shim
        {b'priority': b'high'},  # refused by the shim with its reason
        {b'spooler': b'/nowhere'},  # unknown spooler
        {b'a': b'x' * 70000},  # over 64 KiB
        {b'body': 'text', b'a': b'1'},  # a non-bytes body is an ordinary var, converted by the shim
    ],
)
def test_spool_job_leaves_anything_unusual_to_the_shim(tmp_path, job):
    before = dict(job)
    assert _core.spool_job(job, [str(tmp_path).encode()]) is None
    assert job == before, 'the dict is untouched when the shim takes over'
    assert os.listdir(tmp_path) == []
