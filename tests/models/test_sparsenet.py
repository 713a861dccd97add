"""SparseNet (S85): the exponential-offset connection pattern and the channel counts it implies."""

from __future__ import annotations

import torch

from convzoo.models import create_model
from convzoo.models.sparsenet import SparseBlock, exponential_offsets

# By hand from the paper's rule (layer ℓ aggregates x_{ℓ-1}, x_{ℓ-2}, x_{ℓ-4}, x_{ℓ-8}, … with index ≥ 0; x_0 is the
# block input), newest first; the block output is the same aggregate taken after the last layer (ℓ = 9).
EXPECTED_SOURCES = {
    1: [0],
    2: [1, 0],
    3: [2, 1],
    4: [3, 2, 0],
    5: [4, 3, 1],
    6: [5, 4, 2],
    7: [6, 5, 3],
    8: [7, 6, 4, 0],
}
EXPECTED_BLOCK_OUTPUT = [8, 7, 5, 1]


def test_exponential_offsets():
    assert exponential_offsets(1) == [0]
    assert exponential_offsets(9) == [8, 7, 5, 1]
    assert exponential_offsets(17) == [16, 15, 13, 9, 1]


def test_connection_pattern_of_an_eight_layer_block():
    torch.manual_seed(0)
    in_ch, growth = 5, 3
    block = SparseBlock(
        in_ch, 8, growth, position="b", op=None, bottleneck=False, bn_size=4, drop_rate=0.0, memory_efficient=False
    )
    block_input, layer_inputs, layer_outputs = [], [], []
    block.register_forward_pre_hook(lambda m, args: block_input.append(args[0]))
    for layer in block.layers:
        layer.register_forward_pre_hook(lambda m, args: layer_inputs.append(list(args[0])))
        layer.register_forward_hook(lambda m, args, out: layer_outputs.append(out))
    out = block(torch.randn(2, in_ch, 4, 4))
    produced = [block_input[0], *layer_outputs]  # x_0, x_1, …, x_8

    def index_of(tensor: torch.Tensor) -> int:
        return next(j for j, t in enumerate(produced) if t is tensor)

    received = {ell: [index_of(src) for src in srcs] for ell, srcs in enumerate(layer_inputs, start=1)}
    assert received == EXPECTED_SOURCES
    torch.testing.assert_close(out, torch.cat([produced[j] for j in EXPECTED_BLOCK_OUTPUT], 1))
    # fan-in of each layer from the hand table: x_0 has 5 channels, every x_j (j ≥ 1) has 3
    fan_in = [sum(in_ch if j == 0 else growth for j in EXPECTED_SOURCES[ell]) for ell in range(1, 9)]
    assert [layer.norm1.num_features for layer in block.layers] == fan_in == [5, 8, 6, 11, 9, 9, 9, 14]
    assert block.out_channels == out.shape[1] == 4 * growth


def test_cifar_stage_channels():
    # SparseNet-40-24: 12 layers per block, the output aggregates x_12, x_11, x_9, x_5 → 4·24 = 96 channels,
    # transitions keep all (θ = 1). SparseNet-BC-100-24: 16 layers, x_16, x_15, x_13, x_9, x_1 → 5·24 = 120,
    # halved to 60 by each transition before the next block.
    for name, expected in (("sparsenet40_k24", [96, 96, 96]), ("sparsenet_bc100_k24", [120, 120, 120])):
        model = create_model(name, features_only=True)
        features = model(torch.randn(1, 3, 16, 16))
        assert [f.shape[1] for f in features] == expected, name
    bc = create_model("sparsenet_bc100_k24")
    assert [stage[0][2].out_channels for stage in bc.stages[1:]] == [60, 60]


def test_memory_efficient_sparsenet_matches_plain():
    torch.manual_seed(0)
    plain = create_model("sparsenet_bc100_k24", layers=(3, 3, 3), num_classes=4).double()
    efficient = create_model("sparsenet_bc100_k24", layers=(3, 3, 3), num_classes=4, memory_efficient=True).double()
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(2, 3, 16, 16, dtype=torch.float64)
    outputs = [plain(x), efficient(x)]
    for out in outputs:
        out.sum().backward()
    torch.testing.assert_close(outputs[1], outputs[0])
    grads = dict(plain.named_parameters())
    for name, p in efficient.named_parameters():
        torch.testing.assert_close(p.grad, grads[name].grad, msg=name)
