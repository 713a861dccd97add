"""convzoo models: registered architectures with counted and published parameters and MACs."""

from __future__ import annotations

from convzoo.cli import main


def test_models_lists_counted_and_published_parameters(capsys):
    assert main(["models", "resnet5*"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("resnet50 "))
    # ResNet-50 at 224x224: 25.56M parameters, 4.09 GMACs (torchvision publishes 25.6M and 4.09 "GFLOPS", i.e. MACs)
    assert row.split()[1:5] == ["classify", "25.56M", "25.56M", "4.09"], row
    assert "resnet56" in out and "resnet18" not in out


def test_no_macs_and_no_match(capsys):
    assert main(["models", "resnet50", "--no-macs"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("resnet50 "))
    assert row.split()[1:6] == ["classify", "25.56M", "25.56M", "-", "3x224x224"], row
    assert main(["models", "no_such_model*"]) == 0
    assert capsys.readouterr().out.strip() == "no model matches 'no_such_model*'"
