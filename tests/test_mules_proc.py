"""Mules and farms as real processes under our master: @mulefunc bursts from workers and from
attached processes (not forked by the master), a mule SIGKILLed mid-burst, mule_msg to a mule and
to a farm, signal targets for mules, the bounded queues (full, oversized), and messages kept
across a master's restart.

Delivery rule (docs/compat.md): every message runs; the one a killed mule was running runs again
(at least once), every other exactly once. So a burst with k kills has at most k duplicates.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest
from interop.procs import wait_until

TASKS = textwrap.dedent(
    """
    import os, threading, time
    import uwsgi
    from uwsgidecorators import mulefunc, postfork, thread

    OUT = os.environ['MULE_OUT']

    def _append(name, line):
        fd = os.open(os.path.join(OUT, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    @mulefunc('pair')
    def record(sender, i):
        _append('ran', '%s %d %d %d\\n' % (sender, i, os.getpid(), uwsgi.mule_id()))
        time.sleep(0.0003)

    def burst(sender, first, count):
        for i in range(first, first + count):
            record(sender, i)
        _append('sent', sender + '\\n')

    @postfork
    @thread
    def worker_sender():
        if uwsgi.worker_id() != 1:
            return
        go = os.path.join(OUT, 'go')
        while not os.path.exists(go):
            time.sleep(0.01)
        burst('worker', 0, int(os.environ['MULE_PER_SENDER']))
    """
)


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def _mule_pids(log: str, mule: int) -> list[int]:
    return [int(p) for p in re.findall(rf'spawned uWSGI mule {mule} \(pid: (\d+)\)', log)]


def test_mulefunc_burst_from_three_senders_runs_each_call_once_across_a_farm_with_a_killed_mule(procs, tmp_path):
    (tmp_path / 'mtasks.py').write_text(TASKS)
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    per = [3334, 3333, 3333]  # 10,000 calls: one worker of the master and two attached processes
    env = {'MULE_OUT': out, 'MULE_PER_SENDER': per[0]}
    m = procs.master(
        ['--processes', '1', '--mules', '2', '--farm', 'pair:1,2', '--import', 'mtasks', '--control-socket', control],
        cwd=tmp_path,
        env=env,
    )
    wait_until(lambda: len(_mule_pids(m.log(), 2)) == 1 and 'spawned uWSGI worker 1 ' in m.log(), 20, 'mules', [m])
    first_mule1 = _mule_pids(m.log(), 1)[0]
    attached = []
    for n, (first, count) in enumerate([(per[0], per[1]), (per[0] + per[1], per[2])], 1):
        code = f'import mtasks; mtasks.burst("attached{n}", {first}, {count})'
        attached.append(
            procs.python(
                ['-c', code],
                name=f'attached{n}',
                cwd=tmp_path,
                env={'MULE_OUT': out, 'UWSGIDECORATORS_CONTROL': control, 'PYTHONPATH': tmp_path},
            )
        )
    (out / 'go').touch()
    # Mid-burst: mule 1 has run some calls and there are many to go.
    wait_until(lambda: len(_lines(out / 'ran')) >= 1500, 60, 'the burst to start', [m])
    assert len(_lines(out / 'ran')) < 9000, 'the burst ended before the kill: the test proves nothing'
    os.kill(first_mule1, signal.SIGKILL)
    for a in attached:
        assert a.wait(60) == 0, a.log()
    wait_until(lambda: len(_lines(out / 'sent')) == 3, 60, 'the three senders', [m])
    wait_until(lambda: len(_mule_pids(m.log(), 1)) == 2, 20, 'mule 1 respawned', [m])
    wait_until(lambda: len(set(_lines(out / 'ran'))) >= 10_000 or False, 60, 'every call to run', [m])
    time.sleep(0.5)  # anything still running (there must be nothing more)
    runs = collections.Counter((ln.split()[0], int(ln.split()[1])) for ln in _lines(out / 'ran'))
    expected = {('worker', i) for i in range(per[0])}
    expected |= {('attached1', i) for i in range(per[0], per[0] + per[1])}
    expected |= {('attached2', i) for i in range(per[0] + per[1], 10_000)}
    assert set(runs) == expected
    duplicates = sum(n - 1 for n in runs.values())
    assert duplicates <= 1, f'{duplicates} calls ran twice with one kill'
    mules = collections.Counter(int(ln.split()[3]) for ln in _lines(out / 'ran'))
    assert set(mules) == {1, 2}
    assert m.stop(signal.SIGTERM) == 0
    assert m.leftovers() == []
    assert not Path(str(control) + '.mules').exists(), 'an empty queue file is removed at exit'


HOOK = textwrap.dedent(
    """
    import os
    import uwsgi
    import uwsgidecorators

    OUT = os.environ['MULE_OUT']

    def _append(name, line):
        fd = os.open(os.path.join(OUT, name), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)

    def hook(message):
        _append('got', '%s %d\\n' % (message.decode(), uwsgi.mule_id()))

    uwsgi.mule_msg_hook = hook

    def on_signal(num):
        _append('sig', '%d %d\\n' % (num, uwsgi.mule_id()))

    uwsgi.register_signal(40, 'mule3', on_signal)
    uwsgi.register_signal(41, 'farm_pair', on_signal)
    uwsgi.register_signal(42, 'mules', on_signal)
    uwsgi.register_signal(43, 'farm1', on_signal)
    uwsgi.register_signal(44, 'mule', on_signal)
    """
)


def test_mule_msg_to_a_mule_to_a_farm_and_to_any_and_signal_targets(procs, tmp_path):
    (tmp_path / 'mhook.py').write_text(HOOK)
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    m = procs.master(
        ['--mules', '3', '--farm', 'pair:1,2', '--import', 'mhook', '--control-socket', control],
        cwd=tmp_path,
        env={'MULE_OUT': out},
    )
    wait_until(lambda: len(_mule_pids(m.log(), 3)) == 1, 20, 'mules', [m])
    code = textwrap.dedent(
        """
        import uwsgi
        for i in range(20):
            assert uwsgi.mule_msg(b'm3-%d' % i, 3) is True
            uwsgi.mule_msg('farm-%d' % i, b'pair')
            uwsgi.farm_msg('pair', b'farmmsg-%d' % i)
            uwsgi.mule_msg(b'any-%d' % i)
        for num in (40, 41, 42, 43, 44):
            uwsgi.signal(num)
        try:
            uwsgi.mule_msg(b'x', 4)
        except ValueError as e:
            print('E1', e)
        try:
            uwsgi.mule_msg(b'x', 'nofarm')
        except ValueError as e:
            print('E2', e)
        try:
            uwsgi.mule_msg(b'x' * 65537)
        except ValueError as e:
            print('E3', e)
        try:
            uwsgi.mule_get_msg()
        except ValueError as e:
            print('E4', e)
        """
    )
    sender = procs.python(['-c', code], name='sender', env={'UWSGIDECORATORS_CONTROL': control})
    assert sender.wait(30) == 0, sender.log()
    log = sender.log()
    assert 'E1 mule 4 does not exist (mules are 1 to 3)' in log
    assert 'E2 unknown farm "nofarm"' in log
    assert 'E3 mule message of 65537 bytes is larger than the --mule-msg-size limit of 65536 bytes' in log
    assert 'E4 you can receive mule messages only in a mule !' in log
    wait_until(lambda: len(_lines(out / 'got')) == 80, 20, 'the 80 messages', [m])
    wait_until(lambda: len(_lines(out / 'sig')) == 7, 20, 'the signals', [m])
    got = [ln.split() for ln in _lines(out / 'got')]
    by_prefix: dict[str, set[int]] = collections.defaultdict(set)
    for text, mule in got:
        by_prefix[text.split('-')[0]].add(int(mule))
    assert by_prefix['m3'] == {3}
    assert by_prefix['farm'] <= {1, 2} and by_prefix['farmmsg'] <= {1, 2}
    assert len({text for text, _ in got}) == 80, 'each message once'
    sigs = collections.Counter(tuple(map(int, ln.split())) for ln in _lines(out / 'sig'))
    assert sigs[(40, 3)] == 1
    assert sum(n for (num, mule), n in sigs.items() if num == 41) == 1
    assert {mule for (num, mule) in sigs if num == 41} <= {1, 2}
    assert {mule for (num, mule) in sigs if num == 42} == {1, 2, 3}
    assert {mule for (num, mule) in sigs if num == 43} <= {1, 2}
    assert sum(n for (num, mule), n in sigs.items() if num == 44) == 1
    assert m.stop(signal.SIGTERM) == 0


def test_full_queue_blocks_then_raises_and_messages_survive_a_master_restart(procs, tmp_path):
    (tmp_path / 'mhook.py').write_text(HOOK.split('def on_signal')[0])
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    args = ['--mules', '1', '--import', 'mhook', '--control-socket', control, '--mule-msg-size', '60000']
    args += ['--mule-send-timeout', '0.5', '--reload-mercy', '1']
    m = procs.master(args, cwd=tmp_path, env={'MULE_OUT': out})
    wait_until(lambda: _mule_pids(m.log(), 1), 20, 'the mule', [m])
    mule = _mule_pids(m.log(), 1)[0]
    os.kill(mule, signal.SIGSTOP)
    code = textwrap.dedent(
        """
        import time, uwsgi
        from uwsgidecorators.exceptions import MuleQueueFullError
        n = 0
        try:
            while True:
                uwsgi.mule_msg(b'%d-' % n + b'x' * 59000)
                n += 1
        except MuleQueueFullError as e:
            print('QUEUED', n)
            print('FULL', e)
        """
    )
    sender = procs.python(['-c', code], name='sender', env={'UWSGIDECORATORS_CONTROL': control})
    assert sender.wait(30) == 0, sender.log()
    queued = int(re.search(r'QUEUED (\d+)', sender.log()).group(1))
    assert queued >= 4
    assert 'the any-mule queue stayed full for 0.5 s' in sender.log()
    # The master stops (the stopped mule is SIGKILLed after the mercy): the messages stay.
    assert m.stop(signal.SIGTERM, timeout=20) == 0
    assert f'{queued} mule message(s) not run are kept in' in m.log()
    assert Path(str(control) + '.mules').exists()
    m2 = procs.master(args, cwd=tmp_path, env={'MULE_OUT': out}, name='second')
    wait_until(lambda: len(_lines(out / 'got')) == queued, 30, 'the kept messages to run', [m2])
    assert f'{queued} mule message(s) left by a previous master are queued again' in m2.log()
    assert sorted(int(ln.split('-')[0]) for ln in _lines(out / 'got')) == list(range(queued))
    assert m2.stop(signal.SIGTERM) == 0
    assert not Path(str(control) + '.mules').exists()


def test_a_process_without_a_mule_master_gets_clear_errors(procs, tmp_path):
    code = textwrap.dedent(
        """
        import uwsgi
        from uwsgidecorators.exceptions import MasterNotFoundError
        try:
            uwsgi.mule_msg(b'x')
        except MasterNotFoundError as e:
            print('E1', e)
        """
    )
    p = procs.python(['-c', code], name='lonely')
    assert p.wait(30) == 0, p.log()
    assert 'E1 unable to send the mule message' in p.log()


@pytest.mark.parametrize('script', ['mscript.py', 'mscript:main'])
def test_mule_with_a_script_or_module_function(procs, tmp_path, script):
    (tmp_path / 'mscript.py').write_text(
        textwrap.dedent(
            """
            import os, uwsgi
            def main():
                while True:
                    msg = uwsgi.mule_get_msg()
                    if msg:
                        with open(os.path.join(os.environ['MULE_OUT'], 'script'), 'ab') as f:
                            f.write(msg + b' %d\\n' % uwsgi.mule_id())
            if __name__ == '__main__':
                main()
            """
        )
    )
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    m = procs.master(
        ['--mule', f'--mule={script}', '--control-socket', control, '--pythonpath', tmp_path],
        cwd=tmp_path,
        env={'MULE_OUT': out},
    )
    wait_until(lambda: _mule_pids(m.log(), 2), 20, 'the mules', [m])
    sender = procs.python(
        ['-c', 'import uwsgi; uwsgi.mule_msg(b"hello", 2)'], env={'UWSGIDECORATORS_CONTROL': control}
    )
    assert sender.wait(30) == 0, sender.log()
    wait_until(lambda: _lines(out / 'script') == ['hello 2'], 20, 'the script mule', [m])
    assert m.stop(signal.SIGTERM) == 0


def test_mule_harakiri_kills_a_stuck_message_drops_it_and_the_next_ones_run(procs, tmp_path):
    (tmp_path / 'mslow.py').write_text(
        textwrap.dedent(
            """
            import os, time, uwsgi
            from uwsgidecorators import harakiri, mulefunc

            def _append(line):
                with open(os.path.join(os.environ['MULE_OUT'], 'ran'), 'a') as f:
                    f.write(line + '\\n')

            @mulefunc
            def work(x):
                _append('start %s' % x)
                if x == 'stuck':
                    time.sleep(30)
                _append('done %s' % x)

            @mulefunc
            @harakiri(1)
            def user_limited(x):
                _append('start %s' % x)
                time.sleep(30)
            """
        )
    )
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    m = procs.master(
        ['--mules', '1', '--mule-harakiri', '1', '--import', 'mslow', '--control-socket', control],
        cwd=tmp_path,
        env={'MULE_OUT': out},
    )
    wait_until(lambda: _mule_pids(m.log(), 1), 20, 'the mule', [m])
    code = 'import mslow; mslow.work("stuck"); mslow.work("after"); mslow.user_limited("u"); mslow.work("last")'
    sender = procs.python(['-c', code], cwd=tmp_path, env={'UWSGIDECORATORS_CONTROL': control, 'MULE_OUT': out})
    assert sender.wait(30) == 0, sender.log()
    wait_until(lambda: 'done last' in _lines(out / 'ran'), 30, 'the messages after the stuck ones', [m])
    ran = _lines(out / 'ran')
    assert ran.count('start stuck') == 1 and 'done stuck' not in ran
    assert ran.count('start u') == 1
    assert 'done after' in ran
    assert m.log().count('the message it was running is dropped') == 2
    assert len(_mule_pids(m.log(), 1)) == 3
    assert m.stop(signal.SIGTERM) == 0


def test_queued_messages_survive_a_reload_by_re_exec(procs, tmp_path):
    (tmp_path / 'mhook.py').write_text(HOOK.split('def on_signal')[0])
    out = tmp_path / 'out'
    out.mkdir()
    control = tmp_path / 'ctl' / 'control'
    m = procs.master(
        ['--mules', '1', '--import', 'mhook', '--control-socket', control, '--reload-mercy', '1'],
        cwd=tmp_path,
        env={'MULE_OUT': out},
    )
    wait_until(lambda: _mule_pids(m.log(), 1), 20, 'the mule', [m])
    os.kill(_mule_pids(m.log(), 1)[0], signal.SIGSTOP)  # it cannot take them: they stay queued
    code = 'import uwsgi\nfor i in range(5): uwsgi.mule_msg(b"r%d" % i, 1)\n'
    sender = procs.python(['-c', code], env={'UWSGIDECORATORS_CONTROL': control})
    assert sender.wait(30) == 0, sender.log()
    m.send(signal.SIGHUP)
    wait_until(lambda: len(_mule_pids(m.log(), 1)) == 2, 40, 'the mule of the re-executed master', [m])
    wait_until(lambda: len(_lines(out / 'got')) == 5, 20, 'the queued messages', [m])
    assert sorted(ln.split()[0] for ln in _lines(out / 'got')) == [f'r{i}' for i in range(5)]
    # and an attached sender keeps working across the re-exec (same file)
    sender = procs.python(['-c', 'import uwsgi; uwsgi.mule_msg(b"after", 1)'], env={'UWSGIDECORATORS_CONTROL': control})
    assert sender.wait(30) == 0, sender.log()
    wait_until(lambda: len(_lines(out / 'got')) == 6, 20, 'a message after the reload', [m])
    assert m.stop(signal.SIGTERM) == 0
