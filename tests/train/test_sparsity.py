"""STen (S55): masks against loop references, layouts round-trip and keep their pattern under updates, the
pattern survives optimizer steps (SGD with momentum and weight decay, Adam), gradual masks only grow and follow
the cubic schedule, and errors."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from convzoo.train.sparsity import (
    NM,
    Block,
    Unstructured,
    block_mask,
    cubic_sparsity,
    magnitude_mask,
    nm_mask,
    sparsify_model,
    to_layout,
)


def _weight(shape=(8, 4, 3, 3), seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_magnitude_mask_prunes_the_smallest():
    w = _weight()
    keep = magnitude_mask(w, 0.7)
    assert int((~keep).sum()) == round(0.7 * w.numel())
    assert w[~keep].abs().max() <= w[keep].abs().min()


def test_nm_mask_equals_a_loop_over_groups():
    w = _weight((6, 8, 1, 1))
    keep = nm_mask(w, 2, 4).view(6, 8)
    matrix = w.view(6, 8)
    for r, g in itertools.product(range(6), range(2)):
        group = matrix[r, 4 * g : 4 * g + 4].abs().tolist()
        largest = sorted(range(4), key=lambda i: -group[i])[:2]
        assert keep[r, 4 * g : 4 * g + 4].nonzero().flatten().tolist() == sorted(largest)


def test_block_mask_keeps_whole_blocks_by_norm():
    w = _weight((8, 8, 1, 1))
    keep = block_mask(w, 0.5, (2, 4)).view(8, 8)
    norms = {
        (i, j): float(w.view(8, 8)[2 * i : 2 * i + 2, 4 * j : 4 * j + 4].norm()) for i in range(4) for j in range(2)
    }
    kept = {b for b in norms if bool(keep[2 * b[0], 4 * b[1]])}
    assert len(kept) == 4 and min(norms[b] for b in kept) >= max(norms[b] for b in norms if b not in kept)
    for i, j in norms:
        assert keep[2 * i : 2 * i + 2, 4 * j : 4 * j + 4].unique().numel() == 1  # a block is kept or dropped whole


@pytest.mark.parametrize(
    ("layout", "mask"),
    [
        ("unstructured", lambda w: magnitude_mask(w, 0.8)),
        ("n:m", lambda w: nm_mask(w, 2, 4)),
        ("block", lambda w: block_mask(w, 0.5, (4, 4))),
    ],
)
def test_layouts_round_trip_and_keep_their_pattern(layout, mask):
    w = _weight()
    sparse_w = w * mask(w)
    stored = to_layout(sparse_w, layout)
    assert isinstance(stored, {"unstructured": Unstructured, "n:m": NM, "block": Block}[layout])
    assert torch.equal(stored.to_dense(), sparse_w)
    assert torch.equal(stored.mask(), sparse_w != 0)
    assert stored.nbytes() < w.numel() * w.element_size()
    update = _weight(seed=1)
    pattern = stored.mask()
    stored.add_(update)
    assert torch.equal(stored.to_dense(), torch.where(pattern, sparse_w + update, 0.0))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("layout", ["unstructured", "n:m", "block"])
def test_pattern_survives_optimizer_steps(layout, optimizer):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 4))
    sparsifier, _ = sparsify_model(model, layout, 0.75, block=(4, 4))
    pattern = [m.weight != 0 for m in (model[0], model[3])]
    opt = (
        torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
        if optimizer == "sgd"
        else torch.optim.Adam(model.parameters(), lr=0.05)
    )
    for _ in range(5):
        loss = nn.functional.cross_entropy(model(torch.randn(8, 4, 6, 6)), torch.randint(0, 4, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    sparsifier.squash_mask()
    for m, before in zip((model[0], model[3]), pattern, strict=True):
        assert torch.equal(m.weight != 0, before)
    if layout == "n:m":
        assert int((model[0].weight.reshape(8, -1, 4) != 0).sum(-1).max()) <= 2
    to_layout(model[0].weight.detach(), layout)  # still fits its layout


def test_gradual_schedule_grows_nested_masks():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3))
    sparsifier, scheduler = sparsify_model(model, "unstructured", 0.9, total_steps=6)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    previous = torch.ones_like(model[0].weight, dtype=torch.bool)
    levels = []
    for _ in range(8):
        model(torch.randn(2, 4, 5, 5)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sparsifier.step()
        keep = model[0].weight != 0
        assert not bool((keep & ~previous).any())  # a pruned weight stays pruned
        previous = keep
        levels.append(float((~keep).float().mean()))
        scheduler.step()
    assert levels == sorted(levels) and levels[-1] == pytest.approx(0.9, abs=1 / 288)


def test_cubic_sparsity():
    assert cubic_sparsity(0, 10, 0.9) == 0.0
    assert cubic_sparsity(5, 10, 0.9) == pytest.approx(0.9 * (1 - 0.5**3))
    assert cubic_sparsity(12, 10, 0.9) == pytest.approx(0.9)


def test_errors():
    with pytest.raises(ValueError, match="not a multiple of m=4"):
        nm_mask(_weight((2, 3, 1, 1)), 2, 4)
    with pytest.raises(ValueError, match="holds 3 nonzeros, more than n=2"):
        NM.from_dense(torch.tensor([[1.0, 2.0, 3.0, 0.0]]), 2, 4)
    with pytest.raises(ValueError, match="does not tile into 4×4 blocks"):
        block_mask(_weight((6, 4, 1, 1)), 0.5, (4, 4))
    with pytest.raises(ValueError, match="layout must be one of"):
        to_layout(_weight(), "diagonal")
    with pytest.raises(ValueError, match="holds no conv or linear weight"):
        sparsify_model(nn.ReLU())
    with pytest.raises(ValueError, match="sparsity must be a number in"):
        magnitude_mask(_weight(), 1.5)
