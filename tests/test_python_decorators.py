"""The decorator module and the `uwsgi` shim against real uWSGI's behaviour (SPEC 3, 13).

In-process: the spool dirs come from `uwsgidecorators.configure()`. Byte-level expectations come
from the golden vectors real uWSGI 2.0.21 wrote (shared/uwsgi-spec/golden), so a file written
here must equal, byte for byte, the one uWSGI wrote for the same call.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
import subprocess
import warnings
from pathlib import Path

import pytest
import uwsgi
import uwsgidecorators
from uwsgidecorators import _config, spool, spoolforever, spoolraw
from uwsgidecorators.exceptions import (
    SpoolerNotConfiguredError,
    SpoolError,
    SpoolPacketError,
    SpoolTooLargeError,
    UwsgiError,
)

# Jobs whose expected bytes hold the realpath of the golden dir B, or where we refuse on purpose.
_ROUTED = {'r20_spooler_route', 'd16_spool_route', 'd18_args_spooler_route'}
_OUR_REFUSALS = {'r07_value_over_64k_truncated', 'r11_priority_nonnumeric', 'r17_empty_key'}


# Same names as golden/producer_app.py: the names are what ends up in the files.
@spool
def d_task(arguments):
    return None


@spool(pass_arguments=True)
def d_args(*args, **kwargs):
    return None


@spoolforever
def d_forever(arguments):
    return None


@spoolraw
def d_raw(arguments):
    return uwsgi.SPOOL_OK


@spoolraw(pass_arguments=True)
def d_raw_args(*args, **kwargs):
    return uwsgi.SPOOL_OK


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """Two configured spool dirs A (default) and B, nothing inherited from the environment."""
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    a, b = tmp_path / 'A', tmp_path / 'B'
    a.mkdir()
    b.mkdir()
    uwsgidecorators.configure(spooler=[a, b])
    try:
        yield Path(os.path.realpath(a)), Path(os.path.realpath(b))
    finally:
        _config.reset()


@pytest.fixture
def unconfigured(monkeypatch):
    for var in (_config.ENV_SPOOLERS, _config.ENV_OPT, _config.ENV_MASTER_PID, _config.ENV_DURABLE):
        monkeypatch.delenv(var, raising=False)
    _config.reset()
    yield
    _config.reset()


def _jobs(manifest, kind):
    return [j for j in manifest['jobs'] if j['kind'] == kind]


def _expr(call: str) -> str:
    # "@spool(pass_arguments=True) d_args(1, 'two')" -> "d_args(1, 'two')"
    return call.split(' ', 1)[1] if call.startswith('@') else call


def _namespace():
    return {
        'uwsgi': uwsgi,
        'd_task': d_task,
        'd_args': d_args,
        'd_forever': d_forever,
        'd_raw': d_raw,
        'd_raw_args': d_raw_args,
    }


def _b(item):
    return base64.b64decode(item['b64'])


def _check_file(job, path: bytes, golden_dir: Path, dirs):
    a, _b_dir = dirs
    path = Path(os.fsdecode(path))
    assert path.name.startswith('uwsgi_spoolfile_on_')
    parent = a / job['priority_subdir'] if job['priority_subdir'] else a
    assert path.parent == parent, job['id']
    expected = (golden_dir / job['file']).read_bytes()
    assert path.read_bytes() == expected, job['id']
    assert oct(path.stat().st_mode & 0o777) == job['mode']
    if b'at' in {_b(v['key']) for v in job['vars']}:
        assert int(path.stat().st_mtime) == job['mtime']


# ---------------------------------------------------------------------------------------------
# byte-exact writes


def test_raw_spool_matches_golden_files(manifest, golden_dir, dirs):
    checked = 0
    for job in _jobs(manifest, 'raw'):
        if job['id'] in _ROUTED | _OUR_REFUSALS:
            continue
        path = eval(_expr(job['call']), _namespace())  # the exact call real uWSGI ran
        assert isinstance(path, bytes)
        _check_file(job, path, golden_dir, dirs)
        checked += 1
    assert checked >= 20


def test_decorators_match_golden_files(manifest, golden_dir, dirs):
    checked = 0
    for job in _jobs(manifest, 'decorator'):
        if job['id'] in _ROUTED:
            continue
        path = eval(_expr(job['call']), _namespace())
        assert isinstance(path, bytes), job['id']
        _check_file(job, path, golden_dir, dirs)
        checked += 1
    assert checked >= 15


def test_var_order_and_pickles(dirs):
    from uwsgidecorators import _core

    path = d_args(1, 'two', [3], k={'x': 1}, priority='4', at='4102444800', body=b'pa-body')
    vars_, body = _core.decode_spool(Path(os.fsdecode(path)).read_bytes())
    keys = [k for k, _ in vars_]
    assert keys == [b'ud_spool_func', b'ud_spool_ret', b'priority', b'at', b'args', b'kwargs']
    values = dict(vars_)
    assert values[b'args'] == pickle.dumps((1, 'two', [3]))
    assert values[b'kwargs'] == pickle.dumps({'k': {'x': 1}})
    assert body == b'pa-body'
    assert Path(os.fsdecode(path)).parent.name == '4'

    path = d_task({'z': '1', 'a': '2'}, m='3')
    vars_, _ = _core.decode_spool(Path(os.fsdecode(path)).read_bytes())
    assert [k for k, _ in vars_] == [b'ud_spool_func', b'ud_spool_ret', b'z', b'a', b'm']

    path = d_raw({'a': 'b'})
    vars_, _ = _core.decode_spool(Path(os.fsdecode(path)).read_bytes())
    assert vars_ == [(b'ud_spool_func', b'd_raw'), (b'a', b'b')]


def test_routing_by_spooler_key(dirs):
    a, b = dirs
    for path in (
        uwsgi.spool({b'spooler': os.fsencode(b), b'x': b'y'}),
        d_task({'spooler': str(b), 'x': 'y'}),
        d_args(spooler=str(b), m=1),
    ):
        assert Path(os.fsdecode(path)).parent == b
    assert Path(os.fsdecode(uwsgi.spool({b'spooler': b'', b'x': b'y'}))).parent == a
    assert uwsgi.spoolers == (os.fsencode(a), os.fsencode(b))


# ---------------------------------------------------------------------------------------------
# errors, exactly as uWSGI words them (plus the reason where uWSGI only says "unable to spool job")


def test_error_cases_match_golden(manifest, dirs):
    for job in _jobs(manifest, 'error'):
        exc_name, _, message = job['exception'].partition(': ')
        with pytest.raises(ValueError) as info:
            eval(_expr(job['call']), _namespace())
        if message == 'unable to spool job':
            assert str(info.value).startswith('unable to spool job'), job['id']
        else:
            assert type(info.value).__name__ == exc_name, job['id']
            assert str(info.value) == message, job['id']
    assert not list(dirs[0].iterdir()), 'an error case wrote a file'


def test_refusals_where_uwsgi_loses_data(dirs):
    # uWSGI silently truncates a value over 64 KiB (r07): we refuse.
    with pytest.raises(SpoolTooLargeError) as info:
        uwsgi.spool({b'big': b'y' * 70000})
    assert isinstance(info.value, ValueError) and 'body' in str(info.value)
    # A whole vars block over 64 KiB: uWSGI raises too.
    with pytest.raises(SpoolTooLargeError):
        uwsgi.spool({b'a': b'x' * 65531})
    # uWSGI writes a non-numeric priority into a directory it never scans (r11): we refuse.
    with pytest.raises(ValueError, match='priority must be all digits'):
        uwsgi.spool({b'priority': b'high', b'name': b'phigh'})
    with pytest.raises(ValueError, match='priority'):
        d_task({'priority': 'urgent'})
    # uWSGI writes a zero-length key, then its reader deletes the file unrun (r17): we refuse.
    with pytest.raises(ValueError):
        uwsgi.spool({b'': b'orphan', b'ok': b'1'})
    # the maximum that fits is accepted (r06)
    uwsgi.spool({b'a': bytes(range(256)) * 255 + bytes(range(250))})


def test_body_is_taken_out_of_the_callers_dict(dirs):
    job = {b'name': b'x', b'body': b'raw\x00bytes'}
    path = uwsgi.spool(job)
    assert job == {b'name': b'x'}  # mutated, as uWSGI does
    assert uwsgi.spooler_get_task(path)['body'] == b'raw\x00bytes'
    # only exact bytes are a body: a bytearray stays an ordinary var
    job = {b'body': bytearray(b'abc')}
    path = uwsgi.spool(job)
    assert b'body' in job
    task = uwsgi.spooler_get_task(path)
    assert task[b'body'] == b'abc' and 'body' not in task
    # the body is removed even when a later check fails
    job = {b'body': b'gone', 'strkey': b'1'}
    with pytest.raises(ValueError, match='must contains only bytes'):
        uwsgi.spool(job)
    assert job == {'strkey': b'1'}


def test_value_conversion_like_pyobject_bytes(dirs):
    class B:
        def __bytes__(self):
            return b'dunder'

    path = uwsgi.spool({b'lst': [104, 105], b'ba': bytearray(b'xyz'), b'mv': memoryview(b'mv'), b'o': B()})
    task = uwsgi.spooler_get_task(path)
    assert (task[b'lst'], task[b'ba'], task[b'mv'], task[b'o']) == (b'hi', b'xyz', b'mv', b'dunder')
    for bad in ('str', 5, 1.5, None, [300]):
        with pytest.raises(ValueError, match='spooler callable dictionary must contains only bytes'):
            uwsgi.spool({b'v': bad})
    with pytest.raises(ValueError, match='must contains only bytes'):
        uwsgi.send_to_spooler(a=b'1')  # kwargs keys are str on Python 3


def test_unknown_spooler_is_refused(dirs):
    with pytest.raises(ValueError, match='unable to spool job: unknown spooler'):
        uwsgi.spool({b'spooler': b'relative/dir', b'x': b'y'})


def test_not_configured_is_a_clear_error(unconfigured, tmp_path):
    # decorating works without any spooler (unlike real uWSGI, which needs the option)...
    @spool
    def later(arguments):
        pass

    # ...and enqueueing says how to configure one
    with pytest.raises(SpoolerNotConfiguredError) as info:
        later({'a': 'b'})
    msg = str(info.value)
    assert 'UWSGIDECORATORS_SPOOLERS' in msg and 'uwsgidecorators.configure' in msg
    assert isinstance(info.value, RuntimeError) and isinstance(info.value, SpoolError)
    with pytest.raises(SpoolerNotConfiguredError):
        uwsgi.spooler_jobs()
    # configure() then makes the same object work (it never creates the dir: a typo would
    # queue tasks that no spooler runs)
    with pytest.raises(uwsgidecorators.exceptions.SpoolDirectoryError, match='does not exist'):
        uwsgidecorators.configure(spooler=tmp_path / 'new')
    assert not (tmp_path / 'new').exists()
    (tmp_path / 'new').mkdir()
    uwsgidecorators.configure(spooler=tmp_path / 'new')
    path = later({'a': 'b'})
    assert uwsgi.spooler_jobs() == [path]
    assert uwsgi.opt['spooler'] == os.fsencode(os.path.realpath(tmp_path / 'new'))


def test_environment_configuration(unconfigured, monkeypatch, tmp_path):
    a, b = tmp_path / 'ea', tmp_path / 'eb'
    a.mkdir()
    b.mkdir()
    monkeypatch.setenv(_config.ENV_SPOOLERS, f'{a}{os.pathsep}{b}')
    monkeypatch.setenv(_config.ENV_OPT, '{"spooler": ["x", "y"], "master": true, "processes": "3"}')
    monkeypatch.setenv(_config.ENV_MASTER_PID, '4242')
    monkeypatch.setenv(_config.ENV_DURABLE, '1')
    _config.reset()
    assert uwsgi.spoolers == (os.fsencode(os.path.realpath(a)), os.fsencode(os.path.realpath(b)))
    assert uwsgi.opt == {'spooler': b'y', 'master': True, 'processes': b'3'}  # last value wins on Py3
    assert uwsgi.masterpid() == 4242 and uwsgi.numproc == 3
    assert _config.state().durable is True
    path = uwsgi.spool({b'k': b'v'})
    assert Path(os.fsdecode(path)).parent == Path(os.path.realpath(a))
    monkeypatch.setenv(_config.ENV_OPT, '[1, 2]')
    _config.reset()
    with pytest.raises(ValueError, match='JSON object'):
        _config.state()


def test_exception_tree():
    assert issubclass(SpoolPacketError, ValueError) and issubclass(SpoolPacketError, SpoolError)
    assert issubclass(SpoolTooLargeError, ValueError) and issubclass(SpoolError, UwsgiError)
    assert issubclass(SpoolerNotConfiguredError, RuntimeError)


# ---------------------------------------------------------------------------------------------
# the spooler side: manage_spool_request on what the real plugin passes


def _plugin_dict(job, name='uwsgi_spoolfile_on_test_1_1_1_1_1'):
    d = {}
    for item in job['uwsgi_plugin_dict']:
        key = item['key']['utf8'] if item['key']['type'] == 'str' else _b(item['key'])
        value = _b(item['value'])
        if key == 'spooler_task_name':
            value = name.encode()
        d[key] = value
    return d


def test_manage_spool_request_on_golden_dicts(manifest, monkeypatch):
    seen = []
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_task', lambda a: seen.append(a))
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_forever', lambda a: seen.append(a))
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_raw', lambda a: seen.append(a) or -2)
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_args', lambda *a, **k: seen.append((a, k)))
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_raw_args', lambda *a, **k: seen.append((a, k)) or -2)
    checked = 0
    for job in _jobs(manifest, 'decorator'):
        view = job['uwsgidecorators_view']
        if 'raises' in view:
            continue
        seen.clear()
        ret = uwsgidecorators.manage_spool_request(_plugin_dict(job))
        expected_ret = view['manage_spool_request_returns']
        assert ret == (-2 if not isinstance(expected_ret, int) else expected_ret), job['id']
        if view['mode'] == 'dict':
            want = dict(view['dict_passed_to_function'])
            want['spooler_task_name'] = 'uwsgi_spoolfile_on_test_1_1_1_1_1'
            for key, value in want.items():
                if value.startswith('<str of '):  # the manifest abbreviates long values
                    want[key] = _plugin_dict(job)[key.encode()].decode()
            assert seen == [want], job['id']
        else:
            args, kwargs = seen[0]
            assert (repr(args), repr(kwargs)) == (view['args_repr'], view['kwargs_repr']), job['id']
        checked += 1
    assert checked >= 15


def test_binary_values_reach_the_task_as_bytes(manifest, monkeypatch):
    # Divergence: uWSGI raises UnicodeDecodeError for ever on d05; we pass the raw bytes.
    job = next(j for j in manifest['jobs'] if j['id'] == 'd05_spool_body_bytes')
    seen = []
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'd_task', lambda a: seen.append(a))
    assert uwsgidecorators.manage_spool_request(_plugin_dict(job)) == -2
    assert seen[0]['body'] == b'\x00\xffraw' and seen[0]['name'] == 'b'


def test_manage_spool_request_unknown_function_names_it():
    with pytest.raises(KeyError, match='nope'):
        uwsgidecorators.manage_spool_request({'spooler_task_name': b't', b'ud_spool_func': b'nope'})


def test_spoolraw_returning_none_raises_like_uwsgi(monkeypatch):
    monkeypatch.setitem(uwsgidecorators.spooler_functions, 'r', lambda a: None)
    with pytest.raises(TypeError):
        uwsgidecorators.manage_spool_request({b'ud_spool_func': b'r'})


def test_import_installs_the_hooks():
    assert uwsgi.spooler is uwsgidecorators.manage_spool_request
    assert uwsgi.post_fork_hook is uwsgidecorators.postfork_chain_hook
    assert uwsgi.mule_msg_hook is uwsgidecorators.mule_msg_dispatcher
    assert uwsgi.__uwsgidecorators_shim__ is True
    assert (uwsgi.SPOOL_OK, uwsgi.SPOOL_RETRY, uwsgi.SPOOL_IGNORE) == (-2, -1, 0)
    assert isinstance(uwsgi.version, bytes) and isinstance(uwsgi.hostname, bytes)


def test_encode_decode_helpers():
    assert uwsgidecorators._encode1('é') == 'é'.encode() and uwsgidecorators._encode1(5) == 5
    assert uwsgidecorators._decode1(b'x') == 'x' and uwsgidecorators._decode1(None) is None
    assert uwsgidecorators._encode_to_spooler({'a': 'b', 1: b'c'}) == {b'a': b'b', 1: b'c'}
    assert uwsgidecorators._decode_from_spooler({b'a': b'b'}) == {'a': 'b'}
    with pytest.raises(UnicodeDecodeError):
        uwsgidecorators._decode1(b'\xff')


def test_decorator_objects_and_partials(dirs):
    assert isinstance(d_task, uwsgidecorators._spool) and d_task.pass_arguments is False
    assert d_task.f.__name__ == 'd_task' and d_task.f.spool == d_task.__call__
    assert d_task.base_dict['ud_spool_func'] == 'd_task'
    p = spool(pass_arguments=True)
    assert p.func is uwsgidecorators._spool and p.keywords == {'pass_arguments': True}
    assert spoolraw().func is uwsgidecorators._spoolraw
    assert spoolforever().func is uwsgidecorators._spoolforever
    assert uwsgidecorators.spooler_functions['d_task'] is d_task.f


# ---------------------------------------------------------------------------------------------
# the other decorators


def test_postfork_chain(monkeypatch):
    monkeypatch.setattr(uwsgidecorators, 'postfork_chain', [])
    calls = []

    @uwsgidecorators.postfork
    def everywhere():
        calls.append('all')

    @uwsgidecorators.postfork(2)
    def only_two():
        calls.append('two')

    assert only_two is None  # as in uWSGI: the second __call__ stores f and returns None
    assert isinstance(everywhere, uwsgidecorators.postfork) and everywhere.wid == 0
    uwsgidecorators.postfork_chain_hook()
    assert calls == ['all']
    monkeypatch.setattr(_config.state(), 'worker_id', 2)
    uwsgidecorators.postfork_chain_hook()
    assert calls == ['all', 'all', 'two']


def test_thread_returns_the_function():
    import threading

    done = threading.Event()

    @uwsgidecorators.thread
    def work(x):
        done.set()

    assert work(1) is work.f
    assert done.wait(5)


def test_lock_in_spooler_does_not_call(monkeypatch):
    # inside real uWSGI a spooler may not lock, so uWSGI's class returns None without calling
    monkeypatch.setattr(uwsgidecorators, '_REAL_UWSGI', True)
    monkeypatch.setattr(_config.state(), 'role', 'spooler')
    assert uwsgi.i_am_the_spooler() is True
    called = []
    assert uwsgidecorators.lock(lambda: called.append(1))() is None
    assert called == []


def test_lock_in_a_spooler_of_ours_calls_under_the_lock(monkeypatch):
    # ours may lock in a spooler (uWSGI refuses): the function runs, holding lock 0
    monkeypatch.setattr(_config.state(), 'role', 'spooler')
    seen = []
    assert uwsgidecorators.lock(lambda: seen.append(uwsgi.is_locked(0)) or 7)() == 7
    assert seen == [True] and not uwsgi.is_locked(0)


def test_harakiri_without_master_warns_once(unconfigured):
    h = uwsgidecorators.harakiri(5)
    assert h.s == 5
    wrapped = h(lambda x: x * 2)
    uwsgi._harakiri_warned = False
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        assert wrapped(21) == 42
        assert wrapped(1) == 2
    assert len([w for w in caught if 'harakiri' in str(w.message)]) == 1


# Every decorator of uWSGI's module is built here (issues 8 and 12 built the last: @lock, mules).
BUILT = {
    'spool', 'spoolforever', 'spoolraw', 'postfork', 'signal', 'timer', 'cron', 'rbtimer', 'filemon', 'thread',
    'harakiri', 'erlang', 'rpc', 'lock',
}
BUILT |= {'mulefunc', 'mule', 'muleloop', 'mulemsg', 'farm'}  # issue 12 (tests/test_mules_proc.py)


def test_every_decorator_of_the_real_module_is_built():
    real = Path('/usr/lib/python3/dist-packages/uwsgidecorators.py')
    if not real.exists():
        pytest.skip('Debian uwsgidecorators not installed')
    import ast

    tree = ast.parse(real.read_text())
    helpers = {'farm_loop', 'mule_brain', 'mule_brainloop', 'mulemsg_loop', '_spoolraw', '_spool', '_spoolforever'}
    decorators = {
        n.name
        for n in tree.body
        if isinstance(n, ast.ClassDef) and n.name not in helpers
        or isinstance(n, ast.FunctionDef) and n.name in ('spool', 'spoolforever', 'spoolraw')
    }
    assert decorators == BUILT  # none is refused as not built any more (NotBuiltError)


def test_the_shim_has_the_lock_and_mule_functions_and_refuses_unknown_names():
    # locks and mules are both built: none of their names is refused as not built
    for name in ('lock', 'unlock', 'is_locked', 'mule_id', 'mule_msg', 'mule_get_msg', 'farm_msg',
                 'farm_get_msg', 'in_farm'):
        assert callable(getattr(uwsgi, name)), name
    with pytest.raises(AttributeError, match=r"no attribute 'no_such_function' \(uwsgidecorators shim\)"):
        uwsgi.no_such_function  # noqa: B018


def test_reload_without_a_master_says_so(unconfigured):
    from uwsgidecorators.exceptions import MasterNotFoundError

    with pytest.raises(MasterNotFoundError):
        uwsgi.reload()


def test_mulefunc_payload_is_uwsgi_s(monkeypatch):
    monkeypatch.setattr(uwsgidecorators, '_REAL_UWSGI', True)  # uWSGI's class, as inside real uWSGI
    sent = []
    mf = uwsgidecorators.mulefunc(2)
    real = mf(lambda a, b=0: (a, b))
    assert real == mf.real_call and mf.fname == '<lambda>' and mf.mule == 2
    old = getattr(uwsgi, 'mule_msg', None)
    uwsgi.mule_msg = lambda payload, target: sent.append((payload, target))
    try:
        real(1, b=2)
    finally:
        if old is None:
            del uwsgi.mule_msg
        else:
            uwsgi.mule_msg = old
    payload, target = sent[0]
    assert target == 2
    assert payload == pickle.dumps({'service': 'uwsgi_mulefunc', 'func': '<lambda>', 'args': (1,), 'kwargs': {'b': 2}})
    assert uwsgidecorators.mule_msg_dispatcher(payload) == (1, 2)


def test_public_names_match_the_real_module():
    real = Path('/usr/lib/python3/dist-packages/uwsgidecorators.py')
    if not real.exists():
        pytest.skip('Debian uwsgidecorators not installed')
    import ast

    tree = ast.parse(real.read_text())
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    names |= {t.id for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)}
    missing = sorted(n for n in names if not hasattr(uwsgidecorators, n))
    assert missing == []


# ---------------------------------------------------------------------------------------------
# inside REAL uWSGI: our package must delegate to the builtin module and keep its checks


def _our_pythonpath() -> str:
    return str(Path(uwsgidecorators.__file__).resolve().parent.parent)


def _run_real_uwsgi(uwsgi_bin, args, until, timeout=20.0):
    """Run real uWSGI until `until()` is true (or it exits / times out); stop it by pid."""
    import time

    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV')}
    p = subprocess.Popen(
        [uwsgi_bin, '--plugin', 'python3', '--master', '--die-on-term', '--pythonpath', _our_pythonpath(), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        end = time.monotonic() + timeout
        while time.monotonic() < end and p.poll() is None and not until():
            time.sleep(0.05)
    finally:
        if p.poll() is None:
            os.kill(p.pid, 2)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
                p.wait(5)
    return p.stdout.read().decode(errors='replace') if p.stdout else ''


_INSIDE_APP = """
import os, uwsgi, uwsgidecorators
from uwsgidecorators import spool
def note(text):
    with open(os.environ['INSIDE_OUT'], 'a') as f:
        f.write(text + '\\n')
note('shim=%r real=%r file=%s' % (getattr(uwsgi, '__uwsgidecorators_shim__', False),
     uwsgidecorators._REAL_UWSGI, uwsgidecorators.__file__))
@spool(pass_arguments=True)
def inside_job(a, b):
    note('ran %r in pid %d' % (a + b, os.getpid()))
if uwsgi.worker_id() == 0 and not uwsgi.i_am_the_spooler():
    note('path=%r' % inside_job(20, b=22))
"""


def test_inside_real_uwsgi_delegates_to_the_builtin(uwsgi_bin, tmp_path, spool_dir):
    out = tmp_path / 'out.txt'
    app = tmp_path / 'inside.py'
    app.write_text(_INSIDE_APP)
    log = _run_real_uwsgi(
        uwsgi_bin,
        ['--spooler', str(spool_dir), '--spooler-frequency', '1', '--import', str(app), '--env', f'INSIDE_OUT={out}'],
        until=lambda: out.exists() and 'ran 42' in out.read_text(),
    )
    text = out.read_text() if out.exists() else ''
    assert 'shim=False real=True' in text, log
    assert _our_pythonpath() in text, log
    assert "path=b'" + str(spool_dir) in text, log
    assert 'ran 42' in text, log  # real uWSGI's spooler ran it through our manage_spool_request


def test_inside_real_uwsgi_keeps_the_spooler_check(uwsgi_bin, tmp_path, spool_dir):
    out = tmp_path / 'out.txt'
    app = tmp_path / 'inside.py'
    app.write_text(_INSIDE_APP)
    # --spooler-external alone does not put 'spooler' in uwsgi.opt: uWSGI's own check fires
    log = _run_real_uwsgi(
        uwsgi_bin,
        ['--spooler-external', str(spool_dir), '--import', str(app), '--env', f'INSIDE_OUT={out}'],
        until=lambda: out.exists() and 'shim=' in out.read_text(),
        timeout=10,
    )
    text = out.read_text() if out.exists() else ''
    assert 'shim=False real=True' in text, log
    assert 'path=' not in text
    assert 'you have to enable the uWSGI spooler to use @_spool decorator' in log, log


def test_erlang_registers_the_function_for_the_node():
    """Issue 13: @erlang raised NotBuiltError; now it records the function under the name for the
    master's --erlang node (tests/test_erlang_proc.py runs it against a real erl)."""
    from _uwsgidecorators_runtime import erlang as _erlang

    def echo(message: object) -> object:
        return message

    assert uwsgidecorators.erlang('echo_test')(echo) is echo
    assert _erlang.registered()['echo_test'] is echo
    with pytest.raises(ValueError, match='Invalid erlang process name'):
        uwsgi.erlang_register_process('x' * 256, echo)
    with pytest.raises(TypeError, match='not callable'):
        uwsgi.erlang_register_process('y', 42)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match='works in the Erlang node process'):
        uwsgi.erlang_send_message('a@localhost', 'p', 1)


def test_erlang_inside_real_uwsgi_2_raises_attribute_error(monkeypatch):
    """uWSGI 2.0 has no erlang_register_process: @erlang raises AttributeError there."""

    class Real:
        pass

    monkeypatch.setattr(uwsgidecorators, 'uwsgi', Real())
    with pytest.raises(AttributeError, match='erlang_register_process'):
        uwsgidecorators.erlang('x')(lambda m: m)


def test_refusals_log_uwsgis_lines(dirs, caplog):
    # The checks are the core's (spool/job.rs); the lines uWSGI logs with the errors stay.
    with caplog.at_level(logging.ERROR, logger='uwsgidecorators.spool'):
        with pytest.raises(ValueError, match='unable to spool job: unknown spooler'):
            uwsgi.spool({b'spooler': b'/nowhere', b'x': b'y'})
        with pytest.raises(SpoolTooLargeError):
            uwsgi.spool({b'a': bytearray(70000)})
    assert '[uwsgi-spooler] unable to find spooler "/nowhere"' in caplog.text
    assert "[uwsgi-spooler] args buffer is limited to 64k, use the 'body' for bigger values" in caplog.text
    assert not list(dirs[0].iterdir())
