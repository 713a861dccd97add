import pytest
import torch

from convzoo.models.registration import create_model
from convzoo.models.sr_tiling import tiled_upscale

# LR receptive-field radius of each test config: one pixel per 3×3 conv on the longest path (+2 for SCNet's shifts
# and bilinear taps is covered by the margin)
CASES = [("espcn", {}, 4), ("carn", {"width": 8, "blocks": 2}, 16), ("span", {"width": 8, "blocks": 2}, 12)]


@pytest.mark.parametrize(("name", "cfg", "overlap"), CASES)
@pytest.mark.parametrize("scale", [2, 3])
def test_tiled_equals_whole_image_exactly(name, cfg, overlap, scale):
    torch.manual_seed(0)
    model = create_model(name, scale=scale, **cfg).double().eval()
    x = torch.rand(1, 3, 23, 17, dtype=torch.float64)
    with torch.no_grad():
        whole = model(x)
    tiled = tiled_upscale(model, x, tile=8, overlap=overlap)
    torch.testing.assert_close(tiled, whole, rtol=1e-12, atol=1e-12)


def test_bad_tile_raises():
    with pytest.raises(ValueError, match="tile must be"):
        tiled_upscale(create_model("espcn"), torch.rand(1, 3, 8, 8), tile=0)
