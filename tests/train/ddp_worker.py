"""Run by tests/train/test_trainer.py under torch.distributed.run: train on digits, dump this rank's weights."""

import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

from convzoo.train import TrainConfig, train

out, dump = Path(sys.argv[1]), Path(sys.argv[2])
torch.set_num_threads(1)
config = TrainConfig(model="mixer_resnet20", epochs=2, out=str(out), progress=False, cfg={"blocks": (1, 1, 1)})
result = train(config)
rank = int(__import__("os").environ["RANK"])
state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
save_file(state, str(dump / f"rank{rank}.safetensors"))
