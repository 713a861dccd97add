"""``convzoo train --task pooling-search`` (one command, exact ``--resume``) and ``convzoo search-pooling CKPT``: the
ranked configurations with their scores, the best one's standalone test accuracy, clear refusals."""

from __future__ import annotations

import json

import pytest

from convzoo.cli import main
from convzoo.train import TrainConfig, train

SMALL = ["--cfg", "widths=(4,4,8,8,8)", "--cfg", "supernets=2"]


def _train(out, *extra: str) -> int:
    argv = ["train", "--task", "pooling-search", "--model", "pooling_supernet_resnet20", "--data", "digits"]
    return main([*argv, *SMALL, "--batch-size", "64", "--out", str(out), "--no-progress", *extra])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("pooling") / "run"
    assert _train(out, "--epochs", "2") == 0
    return out


def test_train_resumes_exactly(tmp_path, checkpoint):
    config = TrainConfig(
        task="pooling-search", model="pooling_supernet_resnet20", data="digits", epochs=2, batch_size=64,
        cfg={"widths": (4, 4, 8, 8, 8), "supernets": 2}, out=str(tmp_path / "resumed"), progress=False,
    )  # fmt: skip
    train(config, on_epoch_end=lambda record: False)  # stopped after its first epoch
    assert _train(tmp_path / "resumed", "--epochs", "2", "--resume") == 0

    def records(folder):
        lines = (folder / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]

    assert len(records(checkpoint)) == 2
    assert records(checkpoint) == records(tmp_path / "resumed")


def test_search_prints_the_ranking_and_writes_it_whole(tmp_path, checkpoint, capsys):
    out = tmp_path / "ranking.json"
    capsys.readouterr()
    assert main(["search-pooling", str(checkpoint / "checkpoint"), "--top", "3", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 pooling configurations" in text and "674 validation images of digits" in text
    rows = [line for line in text.splitlines() if line[:1].isdigit() and "(" in line]
    assert len(rows) == 3
    result = json.loads(out.read_text())
    ranking = result["ranking"]
    assert [r["rank"] for r in ranking] == [1, 2, 3, 4, 5, 6]
    assert [r["val_acc"] for r in ranking] == sorted((r["val_acc"] for r in ranking), reverse=True)
    assert sorted(tuple(r["pool_at"]) for r in ranking) == [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)]
    best = result["best"]
    assert best["pool_at"] == ranking[0]["pool_at"] and best["val_acc"] == ranking[0]["val_acc"]
    assert 0 <= best["test_acc"] <= 1
    pool_at = ",".join(map(str, best["pool_at"]))
    assert f"retrain it: convzoo train --model pooling_resnet20 --cfg pool_at={pool_at}" in text
    assert rows[0].startswith("1 ") and f"({', '.join(map(str, best['pool_at']))})" in rows[0]


def test_refusals(tmp_path, checkpoint, exits_2_with_one_line):
    ckpt = str(checkpoint / "checkpoint")
    exits_2_with_one_line(["search-pooling", str(tmp_path / "none")], "is not a convzoo checkpoint")
    exits_2_with_one_line(["search-pooling", ckpt, "--top", "0"], "--top")
    missing = tmp_path / "no" / "ranking.json"
    exits_2_with_one_line(["search-pooling", ckpt, "--json", str(missing)], "does not exist")
    assert not missing.parent.exists()
    classify = tmp_path / "classify"
    argv = ["train", "--model", "pooling_resnet20", "--cfg", "widths=(4,4,8)", "--cfg", "pool_at=(1,2)"]
    assert main([*argv, "--epochs", "1", "--batch-size", "128", "--out", str(classify), "--no-progress"]) == 0
    exits_2_with_one_line(["search-pooling", str(classify / "checkpoint")], "is a classify checkpoint, not a")
