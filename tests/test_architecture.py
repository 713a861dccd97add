"""The floors hold: `import convzoo` stays light, and every registry finds what its packages register."""

import subprocess
import sys

import pytest

from convzoo.registry import all_registries


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_convzoo_loads_no_suite_family_or_optional_dependency():
    loaded = _modules_after("import convzoo")
    heavy = {"onnx", "onnxruntime", "torchao", "dcls", "matplotlib", "sklearn", "skimage", "convzoo.benchmarks"}
    assert not heavy & loaded, sorted(heavy & loaded)
    families = {m for m in loaded if m.startswith(("convzoo.benchmarks.", "convzoo.models.", "convzoo.ops."))}
    # the contracts and the public functions convzoo/__init__ re-exports; no family, op or suite module
    contracts = {
        "convzoo.models.base",
        "convzoo.models.registration",
        "convzoo.models.share_kernels",
        "convzoo.ops.base",
    }
    assert families <= contracts, sorted(families - contracts)


def test_the_first_lookup_loads_the_suites():
    loaded = _modules_after("from convzoo.registry import SUITES\nSUITES.names()")
    assert "convzoo.benchmarks.ops" in loaded


@pytest.mark.parametrize("registry", all_registries(), ids=lambda r: r.what)
def test_every_registry_has_entries(registry):
    assert len(registry) > 0
