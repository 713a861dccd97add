"""Peer test: ``create_model(name, pretrained="timm")`` goes through timm's own loading (its Hugging Face cache,
offline here: a cache laid out as the hub lays it, holding random weights) and fails clearly without the weights."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.interop._peer import require

pytestmark = pytest.mark.peer

_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch
    import timm
    from safetensors.torch import save_file

    from convzoo.models import create_model

    torch.manual_seed(0)
    hub = Path(sys.argv[1]) / "hub"
    tag = timm.create_model("resnet18").pretrained_cfg["hf_hub_id"]  # e.g. timm/resnet18.a1_in1k
    source = timm.create_model("resnet18")
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    repo = hub / ("models--" + tag.replace("/", "--"))
    snapshot = repo / "snapshots" / "0"
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0")
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(snapshot / "model.safetensors"))

    model = create_model("resnet18", pretrained="timm").eval()
    loaded = timm.create_model("resnet18", pretrained=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x)), "convzoo and timm disagree"
        assert torch.equal(loaded.conv1.weight, source.conv1.weight), "timm did not read the cache"
    assert len(model.weights_report.mapped) == 102
    print("loaded", model.weights_report.source)
    try:
        create_model("resnet50", pretrained="timm")
    except RuntimeError as error:
        print("missing:", error)
    """
)


def test_pretrained_timm_loads_from_its_cache_and_fails_clearly_without(tmp_path: Path):
    require("timm")
    require("torchvision")
    script = tmp_path / "pretrained.py"
    script.write_text(_SCRIPT)
    env = dict(os.environ, HF_HOME=str(tmp_path), HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], env=env, cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "loaded timm:resnet18" in done.stdout
    missing = done.stdout.split("missing:", 1)[1]
    assert "timm:resnet50: timm could not build its pretrained weights" in missing
    assert "cache" in missing and "network access" in missing


_NEW_MODELS_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    import torch
    import timm
    from safetensors.torch import save_file

    from convzoo.models import create_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    hub = Path(sys.argv[1]) / "hub"
    for name, arch, side in (("crossvit_9_dagger", "crossvit_9_dagger_240", 240),
                             ("crossvit_small", "crossvit_small_240", 240), ("nasnet_a_large", "nasnetalarge", 64)):
        source = timm.create_model(arch)
        tag = source.pretrained_cfg["hf_hub_id"]  # e.g. timm/nasnetalarge.tf_in1k
        state = source.state_dict()  # timm's initialisation, its BN statistics moved off 0 and 1
        state = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v for k, v in state.items()}
        repo = hub / ("models--" + tag.replace("/", "--"))
        snapshot = repo / "snapshots" / "0"
        snapshot.mkdir(parents=True)
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("0")
        save_file({k: v.contiguous() for k, v in state.items()}, str(snapshot / "model.safetensors"))
        del source

        model = create_model(name, pretrained="timm").eval()
        loaded = timm.create_model(arch, pretrained=True).eval()
        assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items()), "timm did not read the cache"
        x = torch.randn(1, 3, side, side)
        with torch.no_grad():
            want, got = loaded(x), model(x)
        diff = (got - want).abs().max().item()
        assert diff <= 1e-4 * max(want.abs().max().item(), 1.0), f"{name}: convzoo and timm differ by {diff}"
        print("loaded", name, model.weights_report.source, len(model.weights_report.mapped), f"{diff:.3g}")
        del model, loaded
    """
)


def test_pretrained_timm_loads_the_new_models_from_its_cache(tmp_path: Path):
    """``create_model(name, pretrained="timm")`` for NASNet-A Large, CrossViT-S and CrossViT-9†: timm reads
    its cache (random weights laid out as the hub lays them) and the convzoo model computes what timm's does."""
    require("timm")
    require("torchvision")
    script = tmp_path / "pretrained_new.py"
    script.write_text(_NEW_MODELS_SCRIPT)
    env = dict(os.environ, HF_HOME=str(tmp_path), HF_HUB_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], env=env, cwd=root, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for name, arch in (("crossvit_9_dagger", "crossvit_9_dagger_240"), ("crossvit_small", "crossvit_small_240")):
        assert f"loaded {name} timm:{arch}" in done.stdout
    assert "loaded nasnet_a_large timm:nasnetalarge 1546" in done.stdout
