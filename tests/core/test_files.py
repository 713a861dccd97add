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
