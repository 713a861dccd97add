"""CaPE (S75): the attention score depends only on the relative pose P_i P_j⁻¹ (a world-frame change leaves it
unchanged, a change of one view's pose does not), and the encoding against per-block loops."""

import math

import pytest
import torch

from convzoo.models.cape import CaPE, cape_key, cape_query


def _random_pose(generator, count):
    """``(count, 4, 4)`` rigid transforms: a random rotation (QR) and translation."""
    q, r = torch.linalg.qr(torch.randn(count, 3, 3, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    pose = torch.eye(4, dtype=torch.float64).repeat(count, 1, 1)
    pose[:, :3, :3] = q
    pose[:, :3, 3] = torch.randn(count, 3, generator=generator, dtype=torch.float64)
    return pose


def test_scores_depend_only_on_the_relative_pose():
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    attention = CaPE(16, heads=2).double()
    x = torch.randn(1, 5, 16, dtype=torch.float64)
    poses = _random_pose(generator, 5).unsqueeze(0)  # (1, 5, 4, 4)
    world = _random_pose(generator, 1)[0]  # one transform applied to every view: P → P G
    base = attention.scores(x, poses)
    torch.testing.assert_close(attention.scores(x, poses @ world), base, rtol=1e-9, atol=1e-9)
    moved = poses.clone()
    moved[0, 2] = moved[0, 2] @ world  # only view 2 moves: its scores with the others change
    assert not torch.allclose(attention.scores(x, moved)[..., 2, 0], base[..., 2, 0])
    torch.testing.assert_close(attention.scores(x, moved)[..., 0, 1], base[..., 0, 1], rtol=1e-9, atol=1e-9)


def test_encoded_dot_product_is_q_phi_of_the_relative_pose_k():
    generator = torch.Generator().manual_seed(1)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    p_i, p_j = _random_pose(generator, 2)
    relative = p_i @ torch.linalg.inv(p_j)
    expected = sum(q[b * 4 : b * 4 + 4] @ relative @ k[b * 4 : b * 4 + 4] for b in range(2))  # block loop
    got = cape_query(q.view(1, 8), p_i.view(1, 4, 4)) @ cape_key(k.view(1, 8), p_j.view(1, 4, 4)).T
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_identity_poses_leave_attention_plain_and_bad_shapes_raise():
    torch.manual_seed(0)
    attention = CaPE(8, heads=1)
    x = torch.randn(2, 3, 8)
    eye = torch.eye(4).expand(2, 3, 4, 4)
    q, k, _ = attention.qkv(x).chunk(3, dim=-1)
    torch.testing.assert_close(attention.scores(x, eye)[:, 0], q @ k.transpose(-1, -2) / math.sqrt(8))
    assert attention(x, eye).shape == (2, 3, 8)
    with pytest.raises(ValueError, match="divisible by 4"):
        CaPE(12, heads=2)
    with pytest.raises(ValueError, match="poses must be"):
        cape_query(torch.randn(3, 8), torch.randn(2, 4, 4))
