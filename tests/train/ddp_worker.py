"""Run by tests/train/test_trainer.py under torch.distributed.run: train on digits, dump this rank's weights.

``ddp_worker.py OUT DUMP [--resume] [--die-at BATCH]``: with ``--die-at``, rank 1 exits abruptly (``os._exit``,
as a killed process would) after that many training batches, to test how the other rank and the launcher react.
"""

import argparse
import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from convzoo.train import TrainConfig, train
from convzoo.train.tasks.classify import Classify

parser = argparse.ArgumentParser()
parser.add_argument("out", type=Path)
parser.add_argument("dump", type=Path)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--die-at", type=int, default=None)
args = parser.parse_args()
torch.set_num_threads(1)
rank = int(os.environ["RANK"])

if args.die_at is not None and rank == 1:
    real_create = Classify.create
    batches = {"seen": 0}

    def create_and_die_later(self, architecture):
        model = real_create(self, architecture)

        def die(module, inputs, output):
            if module.training:
                batches["seen"] += 1
                if batches["seen"] > args.die_at:
                    (args.dump / "died_at").write_text(repr(time.time()))
                    os._exit(17)

        model.register_forward_hook(die)
        return model

    Classify.create = create_and_die_later

config = TrainConfig(model="mixer_resnet20", epochs=2, out=str(args.out), progress=False, cfg={"blocks": (1, 1, 1)})
result = train(config, resume=args.resume)
state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
save_file(state, str(args.dump / f"rank{rank}.safetensors"))
