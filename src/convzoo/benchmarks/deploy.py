"""Suite ``deploy``: the deploy forms of ResNet-18, ResNet-50 and ConvNeXt-T against fp32 eager (and each other).

Forms: fp32 eager; ``fuse_bn`` + ``reparameterize``; ``optimize`` (per-layer choice, channels_last, frozen graph);
int8 (``quantize``, FX x86: per-channel weights, per-tensor activations, calibrated on random inputs: the timing does
not depend on the data); int8 pt2e (``quantize(backend="pt2e")``: torchao's ``X86InductorQuantizer``, the same
scheme, run through ``torch.compile``; only where torchao is installed); onnxruntime fp32; onnxruntime int8 (static
QDQ, per-channel, when it runs). Every form of a model and batch is built once and shared by that model's cases.
"""

from __future__ import annotations

import importlib.util
import tempfile
import warnings
from functools import lru_cache, partial
from pathlib import Path

import torch
from torch import Tensor, nn

from convzoo.deploy import export_onnx, fuse_bn, onnx_session, optimize, quantize, reparameterize
from convzoo.models import create_model
from convzoo.profile.bench import Case
from convzoo.registry import MODELS, SUITES

__all__ = ["deploy_cases"]

FULL_MODELS = ("resnet18", "resnet50", "convnext_tiny")
QUICK_MODELS = ("resnet18",)
CALIBRATION_BATCHES = 4
COMPILED = "optimize + compile"  # optimize(..., compile=True): torch.compile (inductor) among the whole-model forms
HAS_TORCHAO = importlib.util.find_spec("torchao") is not None


class OnnxRuntime(nn.Module):
    """An onnxruntime session as a module (float32 in, float32 out), so the pair harness can time it."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.session = onnx_session(path, torch.get_num_threads())
        self.input_name = self.session.get_inputs()[0].name

    def forward(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self.session.run(None, {self.input_name: x.numpy()})[0])


def _ort_int8(fp32_path: Path, calibration: list[Tensor], folder: Path) -> OnnxRuntime:
    """onnxruntime's own static int8 quantisation (QDQ, per-channel int8 weights, uint8 activations)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, int8 = folder / "prepared.onnx", folder / "int8.onnx"
    quant_pre_process(str(fp32_path), str(prepared))
    input_name = onnx_session(prepared).get_inputs()[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict | None:
            batch = next(self.batches, None)
            return None if batch is None else {input_name: batch.numpy()}

    reader = Reader()
    quantize_static(
        str(prepared),
        str(int8),
        reader,
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )
    return OnnxRuntime(int8)


@lru_cache(maxsize=1)
def _forms(name: str, batch: int, quick: bool) -> dict[str, nn.Module | Exception]:
    """Every form of model ``name`` for inputs of ``batch`` (a form that fails to build holds its error)."""
    entry = MODELS.get(name)
    torch.manual_seed(0)
    model = create_model(name, **(entry.info.test_cfg if quick else {})).eval()
    x = _input(name, batch, quick)
    calibration = [torch.randn_like(x) for _ in range(CALIBRATION_BATCHES)]
    forms: dict[str, nn.Module | Exception] = {"fp32 eager": model}
    forms["fused + reparam"] = _attempt("fused + reparam", lambda: fuse_bn(reparameterize(model), x))
    forms["optimize"] = _attempt("optimize", lambda: optimize(forms["fused + reparam"], x, repeats=3 if quick else 10))
    if not quick:  # compiling takes minutes per model: full runs only
        forms[COMPILED] = _attempt(COMPILED, lambda: optimize(forms["fused + reparam"], x, compile=True))
    forms["int8"] = _attempt("int8", lambda: quantize(model, calibration, calib_batches=CALIBRATION_BATCHES))
    if HAS_TORCHAO:
        forms["int8 pt2e"] = _attempt(
            "int8 pt2e", lambda: quantize(model, calibration, backend="pt2e", calib_batches=CALIBRATION_BATCHES)
        )
    with tempfile.TemporaryDirectory(prefix="convzoo-deploy-") as tmp:  # sessions keep the models in memory
        folder = Path(tmp)
        exported = _attempt("onnxruntime fp32", lambda: export_onnx(model, folder / "fp32.onnx", x).path)
        forms["onnxruntime fp32"] = exported if isinstance(exported, Exception) else OnnxRuntime(exported)
        forms["onnxruntime int8"] = (
            exported
            if isinstance(exported, Exception)
            else _attempt("onnxruntime int8", lambda: _ort_int8(exported, calibration, folder))
        )
    return forms


def _attempt(form: str, build):
    """``build()``, or the RuntimeError saying why it failed (the harness reports its cases as skipped)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return build()
    except Exception as error:  # noqa: BLE001
        return RuntimeError(
            f"{form} did not build: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        )


def _input(name: str, batch: int, quick: bool) -> Tensor:
    entry = MODELS.get(name)
    size = entry.info.test_size if quick else entry.info.input_size[1]
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, entry.info.input_size[0], size, size, generator=generator)


def _pair(name: str, batch: int, quick: bool, a: str, b: str) -> tuple[nn.Module, nn.Module, Tensor]:
    forms = _forms(name, batch, quick)
    for form in (a, b):
        if isinstance(forms[form], Exception):
            raise forms[form]
    return forms[a], forms[b], _input(name, batch, quick)


# (A, B, A and B compute the same function)
PAIRS = (
    ("fused + reparam", "fp32 eager", True),
    ("optimize", "fp32 eager", True),
    ("int8", "fp32 eager", False),
    ("onnxruntime fp32", "fp32 eager", True),
    ("onnxruntime int8", "fp32 eager", False),
    ("optimize", "onnxruntime fp32", True),
    ("int8", "onnxruntime int8", False),
    (COMPILED, "fp32 eager", True),
    (COMPILED, "onnxruntime fp32", True),
) + (
    (
        ("int8 pt2e", "fp32 eager", False),
        ("int8 pt2e", "int8", False),
        ("int8 pt2e", "onnxruntime int8", False),
    )
    if HAS_TORCHAO
    else ()
)


@SUITES.register(
    "deploy",
    kind="suite",
    papers=("quant-whitepaper",),
    summary="deploy forms (fused, optimize, int8 FX/PT2E, onnxruntime fp32/int8) vs fp32 eager: ResNet-18/50, ConvNeXt",
)
def deploy_cases(quick: bool = False, batch: int | None = None) -> list[Case]:
    """Per model and batch (1 and 8, or ``batch``): each deploy form against fp32 eager, ``optimize`` (without and
    with ``compile=True``) against onnxruntime fp32, int8 (FX) against onnxruntime int8, and int8 pt2e against
    both int8 forms. ``quick``: ResNet-18 at its test config, 32×32, without the compiled ``optimize``."""
    batches = (batch,) if batch else ((2,) if quick else (1, 8))
    return [
        Case(
            name=f"{name} b{size}",
            a=a,
            b=b,
            build=partial(_pair, name, size, quick, a, b),
            same_output=same,
        )
        for name in (QUICK_MODELS if quick else FULL_MODELS)
        for size in batches
        for a, b, same in PAIRS
        if not (quick and COMPILED in (a, b))
    ]
