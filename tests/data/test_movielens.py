"""MovieLens-100k from u.data (tiny fakes): implicit feedback, a per-user split, clear errors."""

from __future__ import annotations

import pytest
import torch

from convzoo.data.base import load_dataset
from convzoo.data.movielens import load_movielens, synthetic_interactions


def _write(folder, lines):
    (folder / "u.data").write_text("".join(line + "\n" for line in lines))


def test_u_data_loads_as_implicit_feedback_with_a_per_user_split(tmp_path):
    rows = [f"{u}\t{i}\t{(u + i) % 5 + 1}\t88125{i}" for u in range(1, 4) for i in range(1, 11)]  # 3 users x 10
    _write(tmp_path, rows)
    data = load_dataset("movielens100k", root=tmp_path)
    assert (data.num_users, data.num_items) == (3, 10)
    assert data.train.shape[1] + data.test.shape[1] == 30
    assert torch.bincount(data.test[0], minlength=3).tolist() == [2, 2, 2]  # 20% of each user's 10 ratings
    pairs = {tuple(p) for p in torch.cat([data.train, data.test], 1).T.tolist()}
    assert len(pairs) == 30 and (0, 0) in pairs  # ids shifted to start at 0
    assert data.matrix().sum() == data.train.shape[1]


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="movielens100k: needs a data folder"):
        load_movielens()
    with pytest.raises(FileNotFoundError, match=r"movielens100k: missing .*u\.data"):
        load_movielens(root=tmp_path)
    _write(tmp_path, ["1\t2\t3\t4", "1,2,3,4"])
    with pytest.raises(ValueError, match="movielens100k: .* line 2 is '1,2,3,4'; expected 4 tab-separated integers"):
        load_movielens(root=tmp_path)
    _write(tmp_path, ["0\t2\t3\t4"])
    with pytest.raises(ValueError, match="line 1: ids start at 1 and ratings are 1-5"):
        load_movielens(root=tmp_path)
    _write(tmp_path, [""])
    with pytest.raises(ValueError, match="holds no ratings"):
        load_movielens(root=tmp_path)


def test_synthetic_interactions_are_deterministic_and_every_user_keeps_training_data():
    a, b = synthetic_interactions(seed=1), synthetic_interactions(seed=1)
    assert torch.equal(a.train, b.train) and torch.equal(a.test, b.test)
    assert set(a.test[0].tolist()) <= set(a.train[0].tolist())
