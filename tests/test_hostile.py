"""Hostile input through the command line (``nasc.cli.main``), one class of mistake at a time.

Every class is sorted by whose fault it is: the user's input and the environment (files, disk,
memory) and the user's own code exit with 1 in one clear line (no "internal error", no traceback
of nasc); run directories are owned by one run, never overwritten silently, resumed only against
the same space and data; no file nasc reads can run code or make it read without bound.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasc import stdlib
from nasc.cli import main
from nasc.dsl.diagnostics import NasError
from nasc.search import rundir
from nasc.search.training import Writer, load_checkpoint

TINYDATA = Path(__file__).parent / "search" / "tinydata.py"
SPACE = """\
import nn

space tiny(C: int = 4, in_channels: int = 1, classes: int = 10) {
    input x: image(in_channels)
    let y = choose [conv2d, conv2d[k=5]] @"op" (x, C)
    output linear(global_avg_pool(y), classes)
}
"""
DATA = """\
import runpy
tiny = runpy.run_path({tinydata!r})["tiny"]

def data(seed=0):
    return tiny(seed, n={n})
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def user_error(code: int, err: str, *needles: str) -> str:
    """The user's (or the environment's) error: exit 1, one clear message, nothing of nasc's."""
    assert code == 1, err
    assert "internal error" not in err and "bug in nasc" not in err, err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# ---- one finished run, shared (everything below only reads it, or copies it) ---------------
def _search_argv(out: Path, space: Path, data: Path, *extra: str) -> list[str]:
    return ["search", str(space), "--method", "darts", "--data", f"{data}:data", "--epochs", "1",
            "--retrain-epochs", "1", "--batch", "32", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run of a user's space on tiny data: (run, space file, data file)."""
    root = tmp_path_factory.mktemp("hostile")
    space, data = root / "tiny.nas", root / "data.py"
    space.write_text(SPACE)
    data.write_text(DATA.format(tinydata=str(TINYDATA), n=64))
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main(_search_argv(root / "run", space, data)) == 0
    finally:
        torch.set_num_threads(before)
    return root / "run", space, data


@pytest.fixture
def copy(finished, tmp_path):
    """A private copy of the finished run (with its space and data files)."""
    run_dir, space, data = finished
    shutil.copytree(run_dir, tmp_path / "run")
    shutil.copy(space, tmp_path / "tiny.nas")
    shutil.copy(data, tmp_path / "data.py")
    return tmp_path / "run", tmp_path / "tiny.nas", tmp_path / "data.py"


# ---- files nasc reads ------------------------------------------------------------------------
def test_check_refuses_devices_directories_and_symlink_loops(capsys, tmp_path):
    (tmp_path / "a.nas").symlink_to(tmp_path / "b.nas")
    (tmp_path / "b.nas").symlink_to(tmp_path / "a.nas")
    for path, what in (("/dev/zero", "character device"), (tmp_path, "directory"),
                       (tmp_path / "a.nas", "symbolic links")):
        user_error(*run(capsys, "check", path)[::2], "cannot read", what)


def test_a_huge_file_is_refused_before_it_is_read(capsys, tmp_path):
    big = tmp_path / "big.nas"
    with open(big, "wb") as f:
        f.truncate(1 << 32)  # sparse: 4 GiB that read as zeros
    user_error(*run(capsys, "check", big)[::2], "the limit is")
    user_error(*run(capsys, "fmt", big)[::2], "the limit is")


def test_check_refuses_a_fifo_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "space.nas"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "nasc", "check", str(fifo)], timeout=120,
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    user_error(done.returncode, done.stderr, "FIFO")


def _arch(tmp_path: Path, **fields) -> Path:
    p = tmp_path / "arch.json"
    p.write_text(json.dumps({"choices": {}, **fields}))
    return p


def test_an_architecture_never_names_a_path(capsys, tmp_path):
    secret = tmp_path / "secret.nas"
    secret.write_text("the secret first line\n")
    for value in ("../../etc/passwd", "/dev/zero", str(secret), "secret.nas"):
        arch = _arch(tmp_path, space=value)
        for argv in (("export", arch, "--format", "nas"), ("train", arch, "--epochs", "1")):
            err = user_error(*run(capsys, *argv)[::2], "not a stdlib space", "--space")
            assert "secret first line" not in err and "root:" not in err


def test_a_stdlib_architecture_name_is_never_a_path(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    user_error(*run(capsys, "export", "../architectures/darts_v2", "--format", "nas")[::2],
               "no stdlib architecture")


@settings(max_examples=40)
@given(value=st.text(max_size=40))
def test_any_space_name_in_an_architecture_is_a_stdlib_name_or_refused(tmp_path_factory, value):
    if stdlib.path_of(value) is not None and "/" not in value:
        return  # a stdlib space: loaded (tested elsewhere)
    arch = _arch(tmp_path_factory.mktemp("a"), space=value)
    with pytest.raises(NasError, match="not a stdlib space"):
        from nasc.export import load_target

        load_target(arch)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                     | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(choices=_json, params=_json, space=_json)
def test_any_architecture_json_is_exported_or_refused_cleanly(capsys, tmp_path_factory, choices,
                                                              params, space):
    path = tmp_path_factory.mktemp("a") / "arch.json"
    path.write_text(json.dumps({"choices": choices, "params": params,
                                "space": "nas_bench_201" if space is None else space}))
    code, _, err = run(capsys, "export", path, "--format", "nas")
    assert code in (0, 1), err
    if code == 1:
        user_error(code, err)


@pytest.mark.parametrize("params", ['{"params": [1, 2]}', '{"params": "C"}',
                                    '{"params": {"C": {"a": 1}}}', '{"params": {"C": NaN}}',
                                    '{"params": {"C": "wide"}}'])
def test_wrong_params_in_an_architecture(capsys, tmp_path, params):
    path = tmp_path / "arch.json"
    path.write_text(params[:-1] + ', "choices": {}, "space": "nas_bench_201"}')
    user_error(*run(capsys, "export", path, "--format", "nas")[::2])


def test_unknown_labels_are_reported_by_train_as_by_export(capsys, tmp_path):
    arch = _arch(tmp_path, space="nas_bench_201")
    arch.write_text(json.dumps({"choices": {"no.such.label": "x"}, "space": "nas_bench_201",
                                "params": {"C": 4, "N": 1}}))
    for argv in (("export", arch, "--format", "nas"),
                 ("train", arch, "--epochs", "1", "--data", f"{TINYDATA}:tiny")):
        user_error(*run(capsys, *argv)[::2], "does not fit space 'nas_bench_201'")


# ---- checkpoints -----------------------------------------------------------------------------
class _Payload:
    """Runs a command when unpickled (what a crafted checkpoint does to ``weights_only=False``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_payload_never_runs(capsys, copy, tmp_path):
    run_dir, space, data = copy
    marker = tmp_path / "payload-ran"
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    torch.save({**ckpt, "config": {**ckpt["config"], "evil": _Payload(marker)}},
               run_dir / "checkpoint.pt")
    for argv in (("derive", run_dir), _search_argv(run_dir, space, data, "--resume")):
        user_error(*run(capsys, *argv)[::2], "not tensors or plain data", "checkpoint.pt")
    user_error(*run(capsys, "train", run_dir, "--out", tmp_path / "t")[::2])  # (no checkpoint)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):  # what the payload is, proved
        torch.load(run_dir / "checkpoint.pt", weights_only=True)


def test_a_checkpoint_holds_only_tensors_and_plain_data(finished):
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        ckpt = torch.load(finished[0] / name, weights_only=True)  # no allow-list needed
        assert {"config", "state", "digests"} <= set(ckpt)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 3],
                      "random": os.urandom(4096), "text": b"not a checkpoint\n"}[how])


@pytest.mark.parametrize("how", ["empty", "truncated", "random", "text"])
def test_a_damaged_checkpoint_is_reported_with_the_previous_one(capsys, copy, how):
    run_dir, space, data = copy
    ckpt = run_dir / "checkpoint.pt"
    _damage(ckpt, how)
    for argv in (("derive", run_dir), _search_argv(run_dir, space, data, "--resume")):
        err = user_error(*run(capsys, *argv)[::2], f"the checkpoint {ckpt} is damaged")
        assert "checkpoint.prev.pt is intact" in err or "previous checkpoint is intact" in err
    _damage(run_dir / "checkpoint.prev.pt", how)
    err = user_error(*run(capsys, "derive", run_dir)[::2], "is damaged")
    assert "intact" not in err and "start the run again" in err


def test_the_previous_checkpoint_can_be_put_back(capsys, copy):
    run_dir = copy[0]
    _damage(run_dir / "checkpoint.pt", "truncated")
    os.replace(run_dir / "checkpoint.prev.pt", run_dir / "checkpoint.pt")
    code, out, err = run(capsys, "derive", run_dir)
    assert code == 0, err and json.loads(out)["space"] == "tiny"


def test_a_failed_checkpoint_write_leaves_no_tmp_and_the_old_checkpoint(tmp_path):
    import resource

    w = Writer(tmp_path / "run")
    w.checkpoint({"small": torch.zeros(4)})
    before = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(OSError, match="too large"):
            w.checkpoint({"big": torch.zeros(1 << 16)})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        w.close()
    assert (tmp_path / "run" / "checkpoint.pt").read_bytes() == before
    assert not list((tmp_path / "run").glob("*.tmp"))


def test_a_file_size_limit_while_checkpointing(capsys, tmp_path):
    import resource

    space, data = tmp_path / "tiny.nas", tmp_path / "data.py"
    space.write_text(SPACE)
    data.write_text(DATA.format(tinydata=str(TINYDATA), n=64))
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, hard))  # below one checkpoint
    try:
        code, _, err = run(capsys, *_search_argv(tmp_path / "run", space, data))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    user_error(code, err, f"{tmp_path / 'run' / 'checkpoint.pt'}: File too large", "ulimit -f")
    assert not list((tmp_path / "run").glob("*.tmp"))


# ---- run directories -------------------------------------------------------------------------
def test_a_second_run_into_a_busy_directory_is_refused(capsys, tmp_path):
    space, data = tmp_path / "tiny.nas", tmp_path / "data.py"
    space.write_text(SPACE)
    data.write_text(DATA.format(tinydata=str(TINYDATA), n=64))
    lock = rundir.claim(tmp_path / "run", resume=False, command="search")  # another run's
    try:
        err = user_error(*run(capsys, *_search_argv(tmp_path / "run", space, data))[::2],
                         "is in use by another nasc run", f"process {os.getpid()}")
        assert socket.gethostname() in err
    finally:
        lock.release()
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.lock").write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    lock = rundir.claim(tmp_path / "run", resume=False, command="search")
    assert json.loads((tmp_path / "run" / "run.lock").read_text())["pid"] == os.getpid()
    lock.release()
    assert not (tmp_path / "run" / "run.lock").exists()


def test_a_finished_run_is_never_overwritten(capsys, copy):
    run_dir, space, data = copy
    files = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    user_error(*run(capsys, *_search_argv(run_dir, space, data))[::2],
               "already holds a finished run", "nothing was changed")
    user_error(*run(capsys, "train", run_dir, "--space", space, "--out", run_dir,
                    "--data", f"{data}:data")[::2], "already holds a finished run")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == files


def test_out_naming_a_file_or_an_unwritable_place(capsys, tmp_path):
    space, data = tmp_path / "tiny.nas", tmp_path / "data.py"
    space.write_text(SPACE)
    data.write_text(DATA.format(tinydata=str(TINYDATA), n=64))
    user_error(*run(capsys, *_search_argv(data, space, data))[::2], "is a file")
    for out, why in (("/proc/nasc/run", "No such file or directory"),
                     ("/dev/null/run", "Not a directory")):
        user_error(*run(capsys, *_search_argv(Path(out), space, data))[::2], why)


def test_resume_refuses_a_changed_space_or_changed_data(capsys, finished):
    run_dir, space, data = finished
    files = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    argv = _search_argv(run_dir, space, data, "--resume")
    try:
        space.write_text("# a comment moves every line, and changes nothing searched\n" + SPACE)
        assert run(capsys, "derive", run_dir)[0] == 0
        space.write_text(SPACE.replace("[conv2d, conv2d[k=5]]", "[conv2d[k=5], conv2d]"))
        user_error(*run(capsys, *argv)[::2], "the search space", "changed since the run started")
        user_error(*run(capsys, "derive", run_dir)[::2], "changed since the run started")
        space.write_text(SPACE)
        data.write_text(DATA.format(tinydata=str(TINYDATA), n=63))
        user_error(*run(capsys, *argv)[::2], "the data changed since the run started")
    finally:
        space.write_text(SPACE)
        data.write_text(DATA.format(tinydata=str(TINYDATA), n=64))
    files.pop("architecture.json"), files.pop("derived.nas")  # (derive rewrote them)
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()
            if p.name not in ("architecture.json", "derived.nas")} == files


def test_derive_reads_only_a_stdlib_space_or_a_nas_file_from_a_checkpoint(capsys, copy):
    run_dir = copy[0]
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    for value in ("/etc/passwd", "/dev/zero", 7):
        torch.save({**ckpt, "config": {**ckpt["config"], "space": value}},
                   run_dir / "checkpoint.pt")
        err = user_error(*run(capsys, "derive", run_dir)[::2])
        assert "root:" not in err


# ---- errors by whose fault they are ----------------------------------------------------------
def test_the_users_data_function_fails_as_theirs(capsys, tmp_path):
    data = tmp_path / "mydata.py"
    data.write_text("def data(seed=0):\n    raise ValueError('my loader is broken')\n")
    code, _, err = run(capsys, "search", "nas_bench_201", "--data", f"{data}:data",
                       "--epochs", "1")
    assert code == 1 and "internal error" not in err, err
    assert "ValueError: my loader is broken" in err and str(data) in err
    assert err.startswith(f"error: your data function '{data}:data' raised ValueError")
    assert "in your code" in err and "nasc/" not in err  # their frames only


@pytest.mark.parametrize("data", ["nope", "no_such_module:data", "/no/such/file.py:data",
                                  "tinydata.py:no_such_function"])
def test_data_that_cannot_be_found(capsys, data):
    user_error(*run(capsys, "search", "nas_bench_201", "--data", data)[::2], f"--data {data}")


def test_a_declared_op_without_implementation_is_located(capsys, tmp_path):
    p = tmp_path / "shuffle.nas"
    p.write_text("op channel_shuffle(x: image, groups: int) -> image(x.channels, x.stride)\n\n"
                 "space s(in_channels: int = 3) {\n    input x: image(in_channels)\n"
                 "    output channel_shuffle(x, groups=2)\n}\n")
    err = user_error(*run(capsys, "export", p, "--format", "python")[::2])
    assert err.startswith(f"{p}:5:12: error: op 'channel_shuffle'"), err
    assert "no PyTorch implementation" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["missing/net.py", ".", "/dev/full"])
def test_export_into_a_bad_place(capsys, tmp_path, monkeypatch, where):
    monkeypatch.chdir(tmp_path)
    err = user_error(*run(capsys, "export", "mobilenet_v2", "--format", "nas", "-o", where)[::2])
    assert where.split("/")[0] in err or "directory" in err
    if where == "/dev/full":
        assert "No space left on device" in err


def test_a_network_too_large_for_memory(capsys, tmp_path):
    p = tmp_path / "tiny.nas"
    p.write_text(SPACE)
    arch = _arch(tmp_path, choices={"op": "conv2d"})
    user_error(*run(capsys, "export", arch, "--space", p, "--format", "python",
                    "-D", f"C={10 ** 12}")[::2], "out of memory")


def test_a_bug_in_nasc_is_still_one(capsys, monkeypatch):
    import operator

    # a KeyError raised inside nasc (no frame of the test's own Python in between)
    monkeypatch.setattr("nasc.space.dec.count", operator.itemgetter("boom"))
    code, _, err = run(capsys, "count", "darts")
    assert code == 2 and "internal error: KeyError" in err and "bug in nasc" in err


def test_zipfile_is_not_what_a_checkpoint_is_judged_by(tmp_path):
    """A zip archive that is not a torch file is damaged, not foreign code."""
    bad = tmp_path / "checkpoint.pt"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("x/data.pkl", b"\x80\x02}q\x00.")
    with pytest.raises(NasError, match="is damaged"):
        load_checkpoint(bad)
