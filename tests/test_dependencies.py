"""The installed environment is exactly the lock, every declared dependency is used, every licence is allowed."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from scripts import pylock, sbom
from tests.conftest import ROOT

RUNTIME_CODE = ("cim", "ingest", "tiles", "sample_models")
DEV_CODE = ("tests", "benchmarks", "scripts")

# Runtime dependencies that work without an import statement of ours, and how they are used.
USED_WITHOUT_IMPORT = {
    "python-multipart": "FastAPI's parser of multipart form uploads (POST /jobs/…), loaded by FastAPI itself",
    "distributed": "the scheduler behind `dask.distributed`, which tiles/ imports for Dask clusters",
}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(group: str | None = None) -> list[Requirement]:
    project = _pyproject()["project"]
    strings = project["dependencies"] if group is None else project["optional-dependencies"][group]
    return [Requirement(s) for s in strings]


def _imported_top_level_modules(folders: tuple[str, ...]) -> dict[str, str]:
    """Top-level module names imported by the code in ``folders`` (absolute imports), with one file each."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if "node_modules" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _distributions_of(modules: dict[str, str]) -> dict[str, str]:
    """Normal-form distribution names that provide ``modules`` (standard library and our own packages left out)."""
    providers = importlib.metadata.packages_distributions()
    ours = set(RUNTIME_CODE + DEV_CODE)
    result: dict[str, str] = {}
    for module, where in modules.items():
        if module in sys.stdlib_module_names or module in ours or module == "__future__":
            continue
        for dist in providers.get(module, [f"<no distribution provides {module}>"]):
            result.setdefault(pylock.normalise(dist), where)
    return result


def test_fresh_environment_holds_exactly_the_locked_versions() -> None:
    needed = pylock.needed_here(pylock.read_lock())
    installed = {
        pylock.normalise(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if pylock.normalise(d.metadata["Name"]) not in {pylock.PROJECT, *pylock.VENV_SEED}
    }
    assert sorted(set(needed) - set(installed)) == [], "locked but not installed: run make setup"
    assert sorted(set(installed) - set(needed)) == [], "installed but not in uv.lock: the venv was changed by hand"
    wrong = {n: (installed[n], locked.version) for n, locked in needed.items() if installed[n] != locked.version}
    assert wrong == {}, "installed (left) and locked (right) versions differ"


def test_lock_records_the_requirements_that_pyproject_declares() -> None:
    locked = {
        (pylock.normalise(r["name"]), SpecifierSet(r.get("specifier", "")), tuple(sorted(r.get("extras", []))))
        for r in pylock.project_requirements(pylock.read_lock())
    }
    declared = {
        (pylock.normalise(r.name), r.specifier, tuple(sorted(r.extras))) for r in _requirements() + _requirements("dev")
    }
    assert declared == locked, "uv.lock is stale: run `make lock` and commit uv.lock"


def test_every_runtime_dependency_is_imported_or_its_indirect_use_is_named() -> None:
    imported = _distributions_of(_imported_top_level_modules(RUNTIME_CODE))
    declared = {pylock.normalise(r.name) for r in _requirements()}
    unused = sorted(declared - set(imported) - set(USED_WITHOUT_IMPORT))
    assert unused == [], f"declared in pyproject.toml but never imported by {RUNTIME_CODE}: use or drop them"
    assert set(USED_WITHOUT_IMPORT) <= declared, "USED_WITHOUT_IMPORT names a package that is no longer declared"


def test_every_third_party_import_is_a_declared_dependency() -> None:
    runtime = {pylock.normalise(r.name) for r in _requirements()}
    dev = {pylock.normalise(r.name) for r in _requirements("dev")}
    runtime_imports = _distributions_of(_imported_top_level_modules(RUNTIME_CODE))
    undeclared_runtime = {d: where for d, where in runtime_imports.items() if d not in runtime}
    assert undeclared_runtime == {}, "runtime code imports packages that only arrive as someone else's dependency"
    undeclared_dev = {
        d: where
        for d, where in _distributions_of(_imported_top_level_modules(DEV_CODE)).items()
        if d not in runtime | dev
    }
    assert undeclared_dev == {}, "tests/benchmarks import packages that pyproject.toml does not declare"


SBOM = pytest.mark.xdist_group("sbom")
"""The tests that read every component: in one worker, so that the inventory is taken once."""


@pytest.fixture(scope="module")
def components() -> list[sbom.Component]:
    return sbom.all_components(Path(sys.executable), sbom.Policy.load(), debian=False)


@SBOM
def test_every_python_and_npm_component_has_a_known_and_allowed_licence(components: list[sbom.Component]) -> None:
    policy = sbom.Policy.load()
    refused = {f"{c.origin}:{c.name} {c.version}": policy.verdict(c) for c in components if policy.verdict(c)}
    assert refused == {}
    assert {c.origin for c in components} == {"python", "npm"}
    assert any(c.name == "cesium" and c.scope == "required" for c in components)
    assert any(c.name == "gltf-validator" and c.scope == "optional" for c in components)
    assert any(c.name == "ifcopenshell" and c.licence == "LGPL-3.0-or-later" for c in components)


@SBOM
def test_copyleft_exceptions_name_installed_components_with_a_reason(components: list[sbom.Component]) -> None:
    policy = sbom.Policy.load()
    present = {f"{c.origin}:{c.name}" for c in components}
    assert set(policy.copyleft) <= present, "licenses/policy.toml names copyleft components that are gone"
    assert all(entry["why"].strip() for entry in policy.copyleft.values())


def test_a_component_with_an_unknown_or_gpl_licence_is_refused() -> None:
    policy = sbom.Policy.load()
    assert policy.verdict(sbom.Component("python", "mystery", "1", None, "required"))
    assert policy.verdict(sbom.Component("python", "strong-copyleft", "1", "GPL-3.0-only", "required"))
    assert policy.verdict(sbom.Component("npm", "either", "1", "MIT OR GPL-3.0-only", "required")) is None
    assert policy.verdict(sbom.Component("npm", "both", "1", "MIT AND GPL-3.0-only", "required"))


@SBOM
def test_licence_inventory_is_generated_from_the_current_components(components: list[sbom.Component]) -> None:
    expected = sbom.licences_markdown(components, sbom.Policy.load())
    current = sbom.LICENSES_DOC.read_text(encoding="utf-8")
    debian = "\n## Debian packages"
    assert current.split(debian)[0] == expected.split(debian)[0], "docs/licenses.md is out of date: run `make sbom`"


@SBOM
def test_sbom_is_cyclonedx_with_every_component(components: list[sbom.Component]) -> None:
    document = sbom.cyclonedx(components)
    assert document["bomFormat"] == "CycloneDX" and document["specVersion"] == "1.6"
    assert len(document["components"]) == len(components)
    assert all(c.get("licenses") for c in document["components"])


def test_setup_installs_the_debian_packages_the_sbom_lists() -> None:
    packages = sbom.setup_apt_packages()
    assert any(p.startswith("postgresql-") and p.endswith("-postgis-3") for p in packages)
    assert "chromium" in packages and "$PG" not in " ".join(packages)
