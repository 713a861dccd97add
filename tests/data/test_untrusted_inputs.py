"""Untrusted files: nothing convzoo reads can run code, and bombs or broken files are refused clearly."""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import convzoo
from convzoo import load_dataset
from convzoo.data.imagefolder import read_image

SOURCE = Path(convzoo.__file__).parent


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _keyword(node: ast.Call, name: str):
    for keyword in node.keywords:
        if keyword.arg == name and isinstance(keyword.value, ast.Constant):
            return keyword.value.value
    return None


def test_no_unsafe_deserialisation_anywhere_in_the_package():
    """A lint: no pickle.load(s), no torch.load without weights_only=True, no np.load with allow_pickle=True."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node, func in _calls(ast.parse(path.read_text(encoding="utf-8"))):
            where = f"{path.relative_to(SOURCE)}:{node.lineno} {func}"
            if func in ("pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "dill.load"):
                found.append(where)
            if func.endswith("torch.load") and _keyword(node, "weights_only") is not True:
                found.append(where + " (without weights_only=True)")
            if func in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") is True:
                found.append(where + " (allow_pickle=True)")
            if func == "setattr" and "MAX_IMAGE_PIXELS" in ast.unparse(node):
                found.append(where + " (Pillow's bomb limit)")
        if "MAX_IMAGE_PIXELS =" in path.read_text(encoding="utf-8"):
            found.append(f"{path.relative_to(SOURCE)} changes Image.MAX_IMAGE_PIXELS")
    assert not found, "unsafe deserialisation or a lifted limit:\n" + "\n".join(found)


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_crafted_cifar_pickle_is_refused_without_running_it(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(2, 3072), dtype=np.uint8)
        (tmp_path / name).write_bytes(pickle.dumps({b"data": data, b"labels": [0, 1]}, protocol=2))
    (tmp_path / "batches.meta").write_bytes(pickle.dumps({b"label_names": [b"a", b"b"]}))
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": _RunsCode(), b"labels": [0]}))
    refused = r"cifar10: .*data_batch_2.* is not a CIFAR pickle \(it references posix.system"
    with pytest.raises(ValueError, match=refused):
        load_dataset("cifar10", root=tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match=r"data_batch_2.* holds a list, expected a CIFAR batch dict"):
        load_dataset("cifar10", root=tmp_path)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (300, 300)).save(path)  # a small file; the limit is lowered so it counts as a bomb
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 // 3)
    with pytest.raises(ValueError, match=r"imagefolder: refusing .*bomb.png.*exceeds limit"):
        read_image(path, 32, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300 * 300 - 1)  # between the limit and twice it: a warning
    with pytest.raises(ValueError, match=r"imagefolder: refusing .*bomb.png"):
        read_image(path, 32, 3)


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"", "empty.png"), (b"not an image at all", "text.jpg"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 20, "cut.png")],
)
def test_empty_truncated_and_wrong_format_images_are_refused(tmp_path, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"imagefolder: cannot read .*{name}.* as an image"):
        read_image(path, 32, 3)
