"""Test-wide settings: one intra-op thread, so small tensors run fast even when the cores are shared."""

import torch

torch.set_num_threads(1)
