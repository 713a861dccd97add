import torch

from convzoo.models.imdn import contrast
from convzoo.models.registration import create_model
from convzoo.models.sr_tiling import tiled_upscale


def test_contrast_is_std_plus_mean():
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    flat = x.flatten(2)
    expected = flat.std(dim=2, unbiased=False) + flat.mean(dim=2)
    torch.testing.assert_close(contrast(x)[..., 0, 0], expected)


def test_tiled_imdn_is_close_to_the_whole_image():
    # CCA's image-wide statistics make the tiles see slightly different attention; the paper's ACS accepts that
    torch.manual_seed(0)
    model = create_model("imdn", scale=2, width=8, blocks=2, reduction=4).double().eval()
    x = torch.rand(1, 3, 24, 20, dtype=torch.float64)
    whole = model(x)
    tiled = tiled_upscale(model, x, tile=12, overlap=10)
    assert tiled.shape == whole.shape
    assert (tiled - whole).abs().max() < 0.05
