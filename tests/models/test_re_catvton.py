"""Re-CatVTON (S97): the person-half guidance against numbers worked by hand, the concatenation round trip, the
garment half's exclusion from the loss, and ground-truth garment injection while sampling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convzoo.models import create_model
from convzoo.models.re_catvton import (
    concat_halves,
    noised_garment,
    recat_guidance,
    sample_tryon,
    split_halves,
    tryon_loss,
)
from convzoo.registry import MODELS
from convzoo.train.diffusion import GaussianDiffusion


def _mirror(x, t, labels):
    """A denoiser that mixes the halves: each pixel plus its mirror image across the concatenation seam."""
    return x + x.flip(-2)


def test_guidance_equals_the_hand_computed_case():
    diffusion = GaussianDiffusion(timesteps=2, beta_start=0.36, beta_end=0.5)  # ᾱ₀ = 0.64: √ᾱ = 0.8, √(1−ᾱ) = 0.6
    column = [[[[1.0], [2.0]]]]  # (1, 1, 2, 1): halves stack along the height
    person_t = torch.tensor(column, dtype=torch.float64)
    garment0 = torch.tensor(column, dtype=torch.float64)
    noise = torch.tensor([[[[0.5], [-1.0]]]], dtype=torch.float64)
    t, labels = torch.tensor([0]), torch.tensor([0])
    # garment at t: 0.8·[1, 2] + 0.6·[0.5, −1] = [1.1, 1.0]; null garment: 0.6·[0.5, −1] = [0.3, −0.6]
    # ε(c)  = [1, 2, 1.1, 1.0] + [1.0, 1.1, 2, 1]  → person half [2.0, 3.1]
    # ε(∅)  = [1, 2, 0.3, −0.6] + [−0.6, 0.3, 2, 1] → person half [0.4, 2.3]
    # s = 2.5: [0.4 + 2.5·1.6, 2.3 + 2.5·0.8] = [4.4, 4.3]
    got = recat_guidance(_mirror, diffusion, person_t, garment0, t, labels, 2.5, noise)
    torch.testing.assert_close(got, torch.tensor([[[[4.4], [4.3]]]], dtype=torch.float64), rtol=0, atol=1e-12)
    one = recat_guidance(_mirror, diffusion, person_t, garment0, t, labels, 1.0, noise)  # conditional alone
    torch.testing.assert_close(one, torch.tensor([[[[2.0], [3.1]]]], dtype=torch.float64), rtol=0, atol=1e-12)
    zero = recat_guidance(_mirror, diffusion, person_t, garment0, t, labels, 0.0, noise)  # null branch alone
    torch.testing.assert_close(zero, torch.tensor([[[[0.4], [2.3]]]], dtype=torch.float64), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="scale must be"):
        recat_guidance(_mirror, diffusion, person_t, garment0, t, labels, -1.0, noise)


def test_concatenation_round_trip_and_layout():
    person, garment = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    for dim in (-1, -2):
        joined = concat_halves(person, garment, dim=dim)
        assert joined.shape[dim] == 2 * person.shape[dim]
        back_p, back_g = split_halves(joined, dim=dim)
        assert torch.equal(back_p, person) and torch.equal(back_g, garment)
    joined = concat_halves(person, garment)  # CatVTON's layout: person on top, garment below
    assert torch.equal(joined[..., :4, :], person) and torch.equal(joined[..., 4:, :], garment)
    with pytest.raises(ValueError, match="differ"):
        concat_halves(person, garment[..., :4])
    with pytest.raises(ValueError, match="odd"):
        split_halves(torch.randn(1, 1, 3, 2))


class _Table(nn.Module):
    """A 'denoiser' whose output is a free parameter, so the loss's gradient shows which outputs it scores."""

    def __init__(self, shape):
        super().__init__()
        self.out = nn.Parameter(torch.randn(shape, dtype=torch.float64))

    def forward(self, x, t, labels):
        return self.out


def test_garment_half_receives_no_loss():
    diffusion = GaussianDiffusion(timesteps=10)
    person0 = torch.rand(3, 2, 4, 4, dtype=torch.float64)
    garment0 = torch.rand(3, 2, 4, 4, dtype=torch.float64)
    table = _Table((3, 2, 8, 4))
    loss = tryon_loss(table, diffusion, person0, garment0, torch.zeros(3, dtype=torch.long),
                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    loss.backward()
    assert torch.count_nonzero(table.out.grad[..., 4:, :]) == 0
    assert torch.count_nonzero(table.out.grad[..., :4, :]) == table.out.grad[..., :4, :].numel()
    # the value: the same draws, scored on the person half by hand
    g = torch.Generator().manual_seed(0)
    torch.randint(0, 10, (3,), generator=g)
    noise_p = torch.randn(person0.shape, generator=g, dtype=torch.float32).double()
    expected = ((table.out.detach()[..., :4, :] - noise_p) ** 2).sum().item() / noise_p.numel()
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_dropped_garments_are_the_null_garment():
    diffusion = GaussianDiffusion(timesteps=10)
    seen = []

    def record(x, t, labels):
        seen.append(x.clone())
        return torch.zeros_like(x)

    person0, garment0 = torch.rand(4, 1, 2, 2), torch.rand(4, 1, 2, 2) + 1
    tryon_loss(record, diffusion, person0, garment0, torch.zeros(4, dtype=torch.long), garment_dropout=0.999,
               generator=torch.Generator().manual_seed(3))  # fmt: skip
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 10, (4,), generator=g)
    torch.randn(person0.shape, generator=g)
    noise_g = torch.randn(garment0.shape, generator=g)
    torch.testing.assert_close(split_halves(seen[0])[1], noised_garment(diffusion, None, t, noise_g))
    with pytest.raises(ValueError, match="garment_dropout"):
        tryon_loss(record, diffusion, person0, garment0, torch.zeros(4, dtype=torch.long), garment_dropout=1.0)


def test_sampling_reinjects_the_clean_garment_every_step():
    diffusion = GaussianDiffusion(timesteps=20)
    garment0 = torch.rand(2, 1, 4, 4) * 2 - 1
    garments = []

    def record(x, t, labels):
        garments.append((split_halves(x)[1][: garment0.shape[0]].clone(), t[0].item()))
        return torch.zeros_like(x)

    out = sample_tryon(record, diffusion, garment0, torch.zeros(2, dtype=torch.long), steps=4, guidance=2.0,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.shape == garment0.shape and len(garments) == 4
    for garment_t, t in garments:  # each step's garment half is q_t(z_g): its noise ε_g = (x − √ᾱ z_g) / √(1−ᾱ)
        abar = diffusion.alphas_cumprod[t].item()
        noise = (garment_t - abar**0.5 * garment0) / (1 - abar) ** 0.5
        torch.testing.assert_close(noised_garment(diffusion, garment0, torch.full((2,), t), noise), garment_t)
        assert noise.std().item() > 0.3  # a fresh Gaussian draw, not a carried-over estimate


def test_registered_wrapper_trains_and_samples():
    entry = MODELS.get("re_catvton_dic_s")
    assert entry.kind == "tryon" and entry.papers == ("re-catvton",)
    torch.manual_seed(0)
    model = create_model("re_catvton_dic_s", in_channels=1, input_size=8, **entry.info.test_cfg)
    diffusion = GaussianDiffusion(timesteps=50)
    person0, garment0 = torch.rand(2, 1, 8, 8) * 2 - 1, torch.rand(2, 1, 8, 8) * 2 - 1
    loss = model.loss(diffusion, person0, garment0)
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.embed.weight.grad is not None
    assert model(concat_halves(person0, garment0), torch.tensor([3, 7])).shape == (2, 1, 16, 8)
    samples = model.eval().sample(
        diffusion, garment0, steps=3, guidance=1.5, generator=torch.Generator().manual_seed(1)
    )
    assert samples.shape == (2, 1, 8, 8) and samples.abs().max() <= 1
    wide = create_model("re_catvton_dic_s", in_channels=1, input_size=8, dim=-1, **entry.info.test_cfg)
    assert wide(concat_halves(person0, garment0, dim=-1), torch.tensor([3, 7])).shape == (2, 1, 8, 16)
    with pytest.raises(ValueError, match="garment_dropout"):
        create_model("re_catvton_dic_s", garment_dropout=1.5)
    with pytest.raises(ValueError, match="dim must be"):
        create_model("re_catvton_dic_s", dim=1)
