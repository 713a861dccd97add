"""The ``sr`` task's contract, over every registered ``kind == "sr"`` model: shapes at ×2/×3/×4, published counts."""

import pytest
import torch

from convzoo.deploy.lora import merge_lora
from convzoo.deploy.reparam import reparameterize
from convzoo.models.registration import create_model
from convzoo.registry import MODELS

SR_MODELS = [e.name for e in MODELS.entries() if e.kind == "sr"]
EXPECTED = {"espcn", "carn", "carn_m", "imdn", "scnet_t", "a2n", "span", "dsclora", "cfsr", "tcsr"}


def deploy_count(model: torch.nn.Module) -> int:
    """Parameters of the deploy form: LoRA merged, training-only branches re-parameterised away."""
    deployed = reparameterize(merge_lora(model))
    return sum(p.numel() for p in deployed.parameters())


def test_the_sr_families_are_registered():
    assert set(SR_MODELS) >= EXPECTED
    for name in SR_MODELS:
        info = MODELS.get(name).info
        assert info.params_source and info.num_classes == 0 and not info.takes_op


@pytest.mark.parametrize("name", SR_MODELS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_output_is_the_input_upscaled(name, scale):
    torch.manual_seed(0)
    info = MODELS.get(name).info
    model = create_model(name, scale=scale, **info.test_cfg)
    x = torch.rand(2, 3, 10, 12)
    y = model(x)
    assert y.shape == (2, 3, 10 * scale, 12 * scale) and torch.isfinite(y).all()
    y.square().mean().backward()
    assert any(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("name", [n for n in SR_MODELS if MODELS.get(n).info.params is not None])
def test_published_parameter_count(name):
    info = MODELS.get(name).info
    counted = deploy_count(create_model(name))
    assert abs(counted - info.params) <= 0.005 * info.params, (name, counted, info.params)


def test_unmatched_counts_are_the_documented_ones():
    # CARN-M: the paper prints 412K; the official layout counts 414,787 (+0.68 %), recorded in params_source
    assert deploy_count(create_model("carn_m")) == 414_787
    assert "414,787" in MODELS.get("carn_m").info.params_source
    # ESPCN prints no count: its Sec. 3 layout on RGB at ×3
    assert deploy_count(create_model("espcn")) == 31_131


@pytest.mark.parametrize("name", ["imdn", "a2n"])
def test_other_scales_have_the_published_counts(name):
    published = {"imdn": {2: 694_000, 3: 703_000}, "a2n": {2: 1_036_000, 3: 1_036_000}}[name]
    for scale, params in published.items():
        counted = deploy_count(create_model(name, scale=scale))
        assert abs(counted - params) <= 0.005 * params


def test_bad_scale_and_unknown_field_raise():
    with pytest.raises(ValueError, match="scale must be one of 2, 3, 4, got 5"):
        create_model("espcn", scale=5)
    with pytest.raises(TypeError, match="unknown config field"):
        create_model("carn", depth=3)


def test_he_init_draws_fan_in_normal_weights_scaled_and_zero_biases():
    from convzoo.models._sr import he_init

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(64, 128, 3), torch.nn.Linear(4, 4), torch.nn.Conv2d(128, 32, 1))
    linear = net[1].weight.clone()
    he_init(net, scale=0.1)
    for conv, fan_in in ((net[0], 64 * 9), (net[2], 128)):
        std = 0.1 * (2 / fan_in) ** 0.5
        assert conv.weight.std().item() == pytest.approx(std, rel=0.05)
        assert conv.weight.mean().abs().item() < 0.05 * std  # centred (4096+ draws: the mean's std is < std / 64)
        assert torch.count_nonzero(conv.bias) == 0
    assert torch.equal(net[1].weight, linear)  # only convolutions


def test_carn_he_init_keeps_the_upsampler_output_at_unit_scale_where_pytorchs_shrinks_it():
    seen = {}

    def rms_of_exit_input(name: str, init: str) -> float:
        torch.manual_seed(0)
        model = create_model(name, init=init).eval()
        model.exit.register_forward_hook(lambda m, args, out: seen.__setitem__(init, args[0].pow(2).mean().sqrt()))
        with torch.no_grad():
            model(torch.rand(1, 3, 16, 16))
        return float(seen[init])

    for name in ("carn", "carn_m"):
        assert rms_of_exit_input(name, "he") > 0.5
        assert rms_of_exit_input(name, "pytorch") < 0.1
    with pytest.raises(ValueError, match="init must be one of 'he', 'pytorch', got 'xavier'"):
        create_model("carn", init="xavier")
