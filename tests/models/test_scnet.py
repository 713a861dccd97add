import pytest
import torch
from torch import nn

from convzoo.models.registration import create_model
from convzoo.ops.shift import shift_offsets, spatial_shift


def test_no_kernel_wider_than_one_anywhere():
    model = create_model("scnet_t")
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    assert len(convs) == 1 + 2 * 16 + 2 * 2 + 2
    for module in model.modules():
        for parameter in module.parameters(recurse=False):
            assert parameter.dim() < 3 or all(k == 1 for k in parameter.shape[2:]), module


def test_the_shift_is_what_the_model_uses():
    x = torch.arange(16.0).view(1, 8, 1, 2).expand(1, 8, 2, 2).contiguous()
    shifted = spatial_shift(x, shift_offsets(2, "all"), (1, 1), (1, 1))
    assert shifted.shape == x.shape and (shifted == 0).any()  # vacated pixels are zero, no parameters


def test_released_init_is_he_times_a_tenth_with_zero_biases():
    torch.manual_seed(0)
    model = create_model("scnet_t", init="basicsr")
    body = model.body[0].body[0]  # a 64 → 64 pointwise conv
    assert body.weight.std().item() == pytest.approx(0.1 * (2 / 64) ** 0.5, rel=0.1)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def _pointwise_ref(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("oc,nchw->nohw", conv.weight[:, :, 0, 0], x) + conv.bias.view(1, -1, 1, 1)


def _shift_ref(x: torch.Tensor) -> torch.Tensor:
    """Group g of 8 moved by the g-th neighbour offset, pixel by pixel: out[y, x] = in[y − dy, x − dx], else 0."""
    out = torch.zeros_like(x)
    size = x.shape[1] // 8
    height, width = x.shape[-2:]
    for g, (dy, dx) in enumerate(shift_offsets(2, "all")):
        for y in range(height):
            for x_ in range(width):
                if 0 <= y - dy < height and 0 <= x_ - dx < width:
                    out[:, g * size : (g + 1) * size, y, x_] = x[:, g * size : (g + 1) * size, y - dy, x_ - dx]
    return out


def _pixel_shuffle_ref(x: torch.Tensor, f: int) -> torch.Tensor:
    n, c, h, w = x.shape
    out = torch.zeros(n, c // (f * f), h * f, w * f, dtype=x.dtype)
    for ch in range(c):
        i, j = divmod(ch % (f * f), f)
        out[:, ch // (f * f), i::f, j::f] = x[:, ch]
    return out


def _scnet_ref(model, x: torch.Tensor) -> torch.Tensor:
    """SCNet written out from the paper's blocks: 1×1 head → (x + 1×1·ReLU(shift(1×1 x))) × B → shift-conv upsamplers
    → 1×1 → 1×1, plus a bilinear copy of the input."""
    leaky = torch.nn.functional.leaky_relu
    out = leaky(_pointwise_ref(model.head, x), 0.1)
    for block in model.body:
        first, _, _, second = block.body
        out = out + _pointwise_ref(second, torch.relu(_shift_ref(_pointwise_ref(first, out))))
    for up in model.up:
        a, _, _, b = up.mix
        if up.mode == "bilinear":
            out = torch.nn.functional.interpolate(out, scale_factor=up.factor, mode="bilinear", align_corners=False)
        mixed = _pointwise_ref(b, _shift_ref(leaky(_pointwise_ref(a, out), 0.02)))
        out = leaky(_pixel_shuffle_ref(mixed, up.factor) if up.mode == "pixelshuffle" else mixed, 0.1)
    out = _pointwise_ref(model.conv_last, leaky(_pointwise_ref(model.conv_hr, out), 0.1))
    return out + torch.nn.functional.interpolate(x, scale_factor=model.scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("upsampler", ["pixelshuffle", "bilinear"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_equals_a_reference_written_out_block_by_block(scale, upsampler):
    torch.manual_seed(0)
    model = create_model("scnet_t", scale=scale, width=16, blocks=2, upsampler=upsampler).double().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.normal_(0, 0.4)
                m.bias.normal_(0, 0.1)  # nonzero, so biases and both signs of every activation are exercised
    x = torch.rand(2, 3, 6, 5, dtype=torch.float64)
    with torch.no_grad():
        out = model(x)
        assert out.shape == (2, 3, 6 * scale, 5 * scale)
        torch.testing.assert_close(out, _scnet_ref(model, x), rtol=1e-10, atol=1e-10)


def test_pixelshuffle_upsampler_widens_its_last_conv_by_the_scale_squared():
    ps = create_model("scnet_t", scale=3, upsampler="pixelshuffle")
    bilinear = create_model("scnet_t", scale=3, upsampler="bilinear")
    assert ps.up[0].mix[-1].out_channels == 64 * 9 and bilinear.up[0].mix[-1].out_channels == 64
    count = sum(p.numel() for p in ps.parameters()) - sum(p.numel() for p in bilinear.parameters())
    assert count == 64 * 64 * 8 + 64 * 8


def test_default_init_is_he_with_each_residual_branch_a_tenth():
    torch.manual_seed(0)
    model = create_model("scnet_t")
    he = (2 / 64) ** 0.5
    assert model.body[0].body[0].weight.std().item() == pytest.approx(he, rel=0.1)
    assert model.body[0].body[-1].weight.std().item() == pytest.approx(0.1 * he, rel=0.1)
    assert model.conv_hr.weight.std().item() == pytest.approx(he, rel=0.1)
    assert all(torch.count_nonzero(m.bias) == 0 for m in model.modules() if isinstance(m, torch.nn.Conv2d))


@torch.no_grad()
def test_he_init_carries_the_signal_to_the_last_conv_and_the_released_init_starves_it():
    """What makes the released init (He × 0.1 on every conv) slow to train: seven ×0.1 layers in a row before
    the output conv at ×4, with no residual path through the upsampler."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 24, 24)
    seen = {}
    for init in ("he", "basicsr"):
        model = create_model("scnet_t", init=init)
        hook = model.conv_last.register_forward_hook(lambda m, i, o, init=init: seen.__setitem__(init, i[0]))
        model(x)
        hook.remove()
    assert seen["he"].pow(2).mean().sqrt() > 0.1
    assert seen["basicsr"].pow(2).mean().sqrt() < 1e-5


@pytest.mark.parametrize(("field", "value"), [("init", "xavier"), ("upsampler", "nearest")])
def test_unknown_init_or_upsampler_is_refused_by_name(field, value):
    with pytest.raises(ValueError, match=f"{field}.*{value}"):
        create_model("scnet_t", **{field: value})
