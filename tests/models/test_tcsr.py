import pytest
import torch

from convzoo.models.tcsr import neighbourhood_attention, window_mask


@pytest.mark.parametrize(("h", "w", "window"), [(5, 6, 3), (4, 4, 5), (3, 7, 7)])
def test_neighbourhood_attention_is_window_masked_full_attention(h, w, window):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 4, h, w, dtype=torch.float64) for _ in range(3))
    out = neighbourhood_attention(q, k, v, window)
    qf, kf, vf = (t.flatten(3) for t in (q, k, v))  # (N, heads, d, HW)
    logits = torch.einsum("nhdi,nhdj->nhij", qf, kf).masked_fill(~window_mask(h, w, window), float("-inf"))
    expected = torch.einsum("nhij,nhdj->nhdi", logits.softmax(-1), vf).view_as(out)
    torch.testing.assert_close(out, expected)


def test_a_window_covering_the_image_is_full_attention():
    q, k, v = (torch.randn(1, 1, 2, 3, 3, dtype=torch.float64) for _ in range(3))
    out = neighbourhood_attention(q, k, v, 5)
    full = torch.einsum("nhdi,nhdj->nhij", q.flatten(3), k.flatten(3)).softmax(-1)
    torch.testing.assert_close(out.flatten(3), torch.einsum("nhij,nhdj->nhdi", full, v.flatten(3)))
