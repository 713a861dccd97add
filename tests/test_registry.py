"""The registry: metadata, duplicates, unknown names with suggestions, catalog keys."""

from __future__ import annotations

import pytest

import convzoo
from convzoo import OPS, UnknownNameError, create_op
from convzoo.catalog import catalog_entries, catalog_keys
from convzoo.registry import Registry, coverage


def test_duplicate_name_raises():
    registry = Registry("thing")
    registry.register("a", kind="x", summary="first")(type("A", (), {}))
    with pytest.raises(ValueError, match=r"thing 'a' is already registered"):
        registry.register("a", kind="x", summary="second")(type("B", (), {}))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(UnknownNameError, match=r"unknown op 'shfit'; did you mean 'shift'"):
        create_op("shfit", 8, 8)
    with pytest.raises(ValueError, match=r"unknown op 'zzzz' \(known: [a-z_]+, .* in all\)"):
        OPS.get("zzzz")


def test_registration_validates_kind_papers_and_dims():
    registry = Registry("op", kinds=("grid",))
    with pytest.raises(ValueError, match=r"op 'a': kind 'blob' is not one of grid"):
        registry.register("a", kind="blob")
    with pytest.raises(ValueError, match=r"op 'a': papers \['not-a-paper'\] are not catalog keys"):
        registry.register("a", kind="grid", papers=("not-a-paper",))
    with pytest.raises(ValueError, match=r"op 'a': dims must be a non-empty subset of \(1, 2, 3\), got \(4,\)"):
        registry.register("a", kind="grid", dims=(4,))


def test_entries_carry_the_metadata():
    entry = OPS.get("shift")
    assert entry.kind == "grid" and entry.dims == (1, 2, 3) and entry.linear and not entry.dynamic
    assert set(entry.papers) == {"scnet-sr", "tcsr"}
    assert entry.summary.startswith("Spatial shift")
    assert OPS.names("s*") == sorted(n for n in OPS.names() if n.startswith("s"))


def test_catalog_table_has_every_seed_once():
    seeds = [e.seed for e in catalog_entries()]
    assert seeds == list(range(1, 120))
    assert {"inception-v3", "unireplknet", "senet", "fcn"} <= catalog_keys()
    assert [e.key for e in catalog_entries() if e.seed in (23, 48)] == ["fcn", "fcn"]


FOUNDATION = [2, 3, 5, 7, 12, 13, 14, 15, 18, 30, 40, 46, 90, 93, 95, 110]


def test_foundation_seeds_are_implemented():
    implemented = {entry.seed for entry, by in coverage() if by}
    assert set(FOUNDATION) <= implemented, sorted(set(FOUNDATION) - implemented)


def test_public_api():
    for name in convzoo.__all__:
        assert hasattr(convzoo, name), name


def test_model_metadata_is_typed():
    from convzoo.registry import MODELS, ModelInfo

    info = MODELS.get("resnet18").info
    assert isinstance(info, ModelInfo)
    assert info.params == 11_689_512 and info.input_size == (3, 224, 224) and info.takes_op
    assert "layers" in info.config_fields() or info.config_fields()
    registry = Registry("model", info=ModelInfo)
    with pytest.raises(TypeError, match=r"model 'x': info must be a ModelInfo, got None"):
        registry.register("x", kind="classify", summary="s")
    with pytest.raises(TypeError, match=r"thing 'x': this registry takes no info"):
        Registry("thing").register("x", kind="k", summary="s", info=info)


def _write_package(root, name, modules):
    package = root / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, text in modules.items():
        (package / f"{module}.py").write_text(text)


def test_a_registry_imports_its_packages_on_first_lookup(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("gadget", packages=("lazy_gadgets",))
    monkeypatch.setattr(convzoo.registry, "_TEST_GADGETS", registry, raising=False)
    register = "from convzoo.registry import _TEST_GADGETS as R\n"
    _write_package(
        tmp_path,
        "lazy_gadgets",
        {
            "alpha": register + "R.register('alpha', kind='k', summary='a')(lambda: None)\n",
            # a module that looks a name up while the registry loads must not recurse
            "beta": register + "R.register('beta', kind='k', summary='b')(lambda: None)\nassert 'beta' in R\n",
            "_private": "raise RuntimeError('private modules are not imported')\n",
        },
    )
    assert "lazy_gadgets.alpha" not in __import__("sys").modules
    assert registry.names() == ["alpha", "beta"]
    assert len(registry) == 2


def test_a_registry_whose_package_fails_to_import_tries_again(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry("gadget", packages=("broken_gadgets",))
    _write_package(tmp_path, "broken_gadgets", {"bad": "raise ImportError('no compiler')\n"})
    with pytest.raises(ImportError, match="no compiler"):
        registry.names()
    with pytest.raises(ImportError, match="no compiler"):  # not silently empty on the second look
        registry.names()


def test_every_analysis_paper_of_section_j_is_implemented():
    covered = {
        entry.seed for entry, by in coverage() if entry.section == "J" and any(b.startswith("analysis:") for b in by)
    }
    section_j = {entry.seed for entry in catalog_entries() if entry.section == "J"}
    assert section_j == covered, sorted(section_j - covered)
