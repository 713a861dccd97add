"""Deployment: BN folding and Tune mode, re-parameterisation, int8 quantisation, ONNX export, per-layer optimisation,
and :func:`deploy_checkpoint`, all of them applied to a trained checkpoint and measured (``convzoo deploy``)."""

from convzoo.deploy.binarize import binarize
from convzoo.deploy.export import OnnxExport, export_onnx, onnx_session, save_torchscript
from convzoo.deploy.fuse_bn import find_conv_bn_pairs, fuse_bn
from convzoo.deploy.optimize import FFTConv, OptimizePlan, fft_conv, optimize, optimize_with_report
from convzoo.deploy.pipeline import DeployForm, DeployReport, deploy_checkpoint
from convzoo.deploy.quantize import QuantizeReport, model_size_bytes, quantize, quantize_with_report
from convzoo.deploy.quantize_pt2e import PT2EInt8
from convzoo.deploy.reparam import ReparamReport, reparameterize, reparameterize_with_report
from convzoo.deploy.sparsify import SparsePointwiseConv2d, sparsify
from convzoo.deploy.tune import TuneConvBN, saved_tensor_bytes, tune_mode

__all__ = [
    "DeployForm",
    "DeployReport",
    "FFTConv",
    "OnnxExport",
    "OptimizePlan",
    "PT2EInt8",
    "QuantizeReport",
    "ReparamReport",
    "TuneConvBN",
    "binarize",
    "deploy_checkpoint",
    "export_onnx",
    "fft_conv",
    "find_conv_bn_pairs",
    "fuse_bn",
    "model_size_bytes",
    "onnx_session",
    "optimize",
    "optimize_with_report",
    "quantize",
    "quantize_with_report",
    "reparameterize",
    "reparameterize_with_report",
    "saved_tensor_bytes",
    "SparsePointwiseConv2d",
    "sparsify",
    "save_torchscript",
    "tune_mode",
]
