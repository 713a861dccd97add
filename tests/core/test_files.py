"""Atomic, durable writes: all or nothing, flushed, with the user's permissions."""

import json
import os

import pytest

import convzoo.core.files as files_module
from convzoo.core.files import atomic_write, atomic_write_json, atomic_write_text


def test_write_atomic_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "deep" / "file.txt", "old")
    assert target.read_text() == "old" and (target.stat().st_mode & 0o777) != 0o600

    def interrupted(source, destination):
        raise KeyboardInterrupt

    monkeypatch.setattr(files_module.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in target.parent.iterdir()) == ["file.txt"]


def test_a_failing_writer_leaves_nothing_behind(tmp_path):
    def broken(temp):
        temp.write_text("half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(tmp_path / "x.bin", broken)
    assert list(tmp_path.iterdir()) == []


def test_the_file_and_its_folder_are_flushed(tmp_path, monkeypatch):
    flushed = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        flushed.append(os.path.realpath(f"/proc/self/fd/{descriptor}"))
        real_fsync(descriptor)

    monkeypatch.setattr(files_module.os, "fsync", recording_fsync)
    target = atomic_write_json(tmp_path / "data.json", {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert str(tmp_path) in flushed  # the folder, after the rename
    assert any(p.startswith(str(tmp_path / ".data.json.")) for p in flushed)  # the file, before it


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        target = atomic_write_text(tmp_path / "shared.txt", "x")
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o640


_REWRITER = """
import sys
from convzoo.core.files import atomic_write_bytes
path, size = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
n = 0
while True:
    n += 1
    atomic_write_bytes(path, bytes([n % 251]) * size)
"""


@pytest.mark.parametrize("kills", [pytest.param(5, id="5"), pytest.param(50, id="50", marks=pytest.mark.slow)])
def test_sigkill_mid_write_leaves_a_whole_file(tmp_path, kills):
    import random
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "report.bin"
    size = 4 * 2**20  # large enough that a kill often lands inside a write
    atomic_write_bytes = files_module.atomic_write_bytes
    atomic_write_bytes(target, b"\0" * size)
    rng = random.Random(0)
    for _ in range(kills):
        process = subprocess.Popen([sys.executable, "-c", _REWRITER, str(target), str(size)], stdout=subprocess.PIPE)
        assert process.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.0, 0.3))
        process.send_signal(signal.SIGKILL)
        process.wait()
        data = target.read_bytes()
        assert len(data) == size and data == data[:1] * size, "a half-written file"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "report.bin"]
    assert all(name.startswith(".report.bin.") for name in leftovers)  # only temporary files of killed writes
