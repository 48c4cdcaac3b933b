"""``make sbom``: one CycloneDX 1.6 SBOM of every third-party component, and ``docs/licenses.md`` from it.

- Python: the CycloneDX project's own generator (``cyclonedx-py environment``) over the installed
  environment (``.venv``, which ``make setup`` installs from ``uv.lock``); runtime components are told
  from development-only ones by the lock's dependency graph.
- npm: each ``package-lock.json`` of ``web_viewer/`` (shipped to browsers) and ``tools/node/`` (test tools).
- Debian: the packages ``scripts/setup.sh`` installs, by name and installed version (``dpkg-query``), with
  the licences their machine-readable ``copyright`` files give.

Package metadata often names a licence only by a trove classifier ("BSD License") or free text; the
overrides in ``licenses/policy.toml`` give the SPDX expression read from the project's own licence file.
The policy's allowed list and its named copyleft exceptions decide what may ship (``tests/test_dependencies.py``).
Written by hand because no tool merges the three ecosystems' SBOMs and applies a licence policy.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from license_expression import ExpressionError, get_spdx_licensing

from scripts.pylock import ROOT, VENV_SEED, normalise, read_lock, runtime_names

POLICY_FILE = ROOT / "licenses" / "policy.toml"
SBOM_FILE = ROOT / "build" / "sbom" / "cim-platform.cdx.json"
LICENSES_DOC = ROOT / "docs" / "licenses.md"
NPM_FOLDERS = {"web_viewer": "required", "tools/node": "optional"}

# Trove classifiers that name exactly one SPDX licence; "BSD License" or "GNU LGPL" do not, and need an override.
CLASSIFIERS = {
    "License :: OSI Approved :: MIT License": "MIT",
    "License :: OSI Approved :: Apache Software License": "Apache-2.0",
    "License :: OSI Approved :: ISC License (ISCL)": "ISC",
    "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "License :: OSI Approved :: Python Software Foundation License": "PSF-2.0",
}
_LICENSING = get_spdx_licensing()


@dataclass(frozen=True)
class Component:
    """One third-party component: where it comes from, its name and version, licence and scope.

    ``licence`` is an SPDX expression, or ``None`` when nothing names one; ``scope`` is CycloneDX's
    ``required`` (needed at run time) or ``optional`` (development and test tools only).
    """

    origin: str  # python | npm | debian
    name: str
    version: str
    licence: str | None
    scope: str
    purl: str | None = None


@dataclass(frozen=True)
class Policy:
    """``licenses/policy.toml``: allowed SPDX ids, per-component overrides and named copyleft components."""

    allowed: frozenset[str]
    overrides: dict[str, dict[str, str]]
    copyleft: dict[str, dict[str, str]]

    @classmethod
    def load(cls, path: Path = POLICY_FILE) -> Policy:
        """Read the policy file kept in the repository."""
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return cls(frozenset(data["allowed"]), data.get("overrides", {}), data.get("copyleft", {}))

    def override(self, origin: str, name: str) -> str | None:
        """The licence the policy gives ``name`` (``python:jinja2`` style keys), if any."""
        entry = self.overrides.get(f"{origin}:{name}")
        return entry["license"] if entry else None

    def verdict(self, component: Component) -> str | None:
        """``None`` when the component may ship, else why not (unknown licence, or not allowed and not named)."""
        if component.licence is None:
            return "no licence is known: add an override with its source to licenses/policy.toml"
        try:
            parsed = _LICENSING.parse(component.licence)  # identifiers are checked against the policy below
        except ExpressionError as exc:
            return f"licence {component.licence!r} is not a valid SPDX expression ({exc})"
        if _satisfied(parsed, self.allowed):
            return None
        named = self.copyleft.get(f"{component.origin}:{component.name}")
        if named and named.get("license") == component.licence and named.get("why"):
            return None
        return f"licence {component.licence} is not in the allowed list and the component is not named under [copyleft]"


def _satisfied(expression: Any, allowed: frozenset[str]) -> bool:
    """True when an SPDX expression holds with only the ``allowed`` identifiers available (OR: one, AND: all)."""
    kind = type(expression).__name__
    if kind == "AND":
        return all(_satisfied(arg, allowed) for arg in expression.args)
    if kind == "OR":
        return any(_satisfied(arg, allowed) for arg in expression.args)
    return str(expression.key) in allowed


def _licence_of(entries: list[dict[str, Any]]) -> str | None:
    """One SPDX expression from a CycloneDX ``licenses`` list (ids and expressions first, then classifiers)."""
    spdx: list[str] = []
    classified: list[str] = []
    for entry in entries:
        if "expression" in entry:
            spdx.append(entry["expression"])
        elif entry.get("license", {}).get("id"):
            spdx.append(entry["license"]["id"])
        elif entry.get("license", {}).get("name") in CLASSIFIERS:
            classified.append(CLASSIFIERS[entry["license"]["name"]])
    chosen = list(dict.fromkeys(spdx or classified))
    if not chosen:
        return None
    return chosen[0] if len(chosen) == 1 else " AND ".join(f"({c})" if " " in c else c for c in chosen)


def python_components(python: Path, policy: Policy) -> list[Component]:
    """The installed Python distributions (``cyclonedx-py environment``) with licences and scopes."""
    runtime = runtime_names(read_lock())
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "python.cdx.json"
        subprocess.run(
            [Path(sys.executable).parent / "cyclonedx-py", "environment", "--of", "JSON", "-o", out, python],
            check=True,
            capture_output=True,
        )
        bom = json.loads(out.read_text(encoding="utf-8"))
    components = []
    for c in bom["components"]:
        name = normalise(c["name"])
        if name in VENV_SEED:
            continue  # left by an older `python -m venv`; not part of the locked environment
        licence = policy.override("python", name) or _licence_of(c.get("licenses", []))
        scope = "required" if name in runtime else "optional"
        components.append(Component("python", name, c["version"], licence, scope, c.get("purl")))
    return sorted(components, key=lambda c: c.name)


def npm_components(policy: Policy) -> list[Component]:
    """The npm packages of the viewer (``required``) and of the Node test tools (``optional``).

    Read from each folder's ``package-lock.json`` (lockfile v2/v3), which records name, version, licence
    and integrity hash of every installed package: the same tree ``@cyclonedx/cyclonedx-npm
    --package-lock-only`` reads, without adding that tool's 177 packages (two minutes) to every fresh install.
    """
    components = []
    for folder, scope in NPM_FOLDERS.items():
        lock = json.loads((ROOT / folder / "package-lock.json").read_text(encoding="utf-8"))
        for path, entry in lock["packages"].items():
            if not path:
                continue  # the folder's own package
            name = path.rsplit("node_modules/", 1)[-1]
            licence = policy.override("npm", name) or entry.get("license")
            purl = f"pkg:npm/{name.replace('@', '%40')}@{entry['version']}"
            dev_only = scope == "optional" or entry.get("dev", False)
            components.append(
                Component("npm", name, entry["version"], licence, "optional" if dev_only else "required", purl)
            )
    unique = {(c.name, c.version): c for c in sorted(components, key=lambda c: c.scope, reverse=True)}
    return sorted(unique.values(), key=lambda c: c.name)


def setup_apt_packages(setup_script: Path = ROOT / "scripts" / "setup.sh") -> list[str]:
    """The Debian packages ``scripts/setup.sh`` installs (its ``wanted=(…)`` list, ``$PG`` resolved)."""
    text = setup_script.read_text(encoding="utf-8")
    match = re.search(r"^\s*wanted=\(([^)]*)\)", text, re.MULTILINE)
    if match is None:
        raise ValueError("scripts/setup.sh has no wanted=(…) package list")
    majors = sorted((p.name for p in Path("/usr/lib/postgresql").glob("*") if p.name.isdecimal()), key=int)
    pg = majors[-1] if majors else "15"
    return [word.strip('"').replace("$PG", pg) for word in match.group(1).split()]


def _debian_licence(package: str) -> str | None:
    """The licence names of the ``Files: *`` paragraph of a machine-readable Debian copyright file."""
    copyright_file = Path("/usr/share/doc") / package / "copyright"
    if not copyright_file.is_file():
        return None
    text = copyright_file.read_text(encoding="utf-8", errors="replace")
    for paragraph in re.split(r"\n\s*\n", text):
        if re.search(r"^Files:\s*\*\s*$", paragraph, re.MULTILINE):
            found = re.search(r"^License:\s*(.+)$", paragraph, re.MULTILINE)
            if found:
                return found.group(1).strip()
    return None


def debian_components() -> list[Component]:
    """The Debian packages of ``make setup`` as installed here (version from ``dpkg-query``)."""
    components = []
    for package in setup_apt_packages():
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False
        )
        version = result.stdout.strip() if result.returncode == 0 else "not installed"
        purl = f"pkg:deb/debian/{package}@{version}"
        components.append(Component("debian", package, version, _debian_licence(package), "required", purl))
    return components


def cyclonedx(components: list[Component]) -> dict[str, Any]:
    """The SBOM document (CycloneDX 1.6 JSON) for ``components``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "component": {
                "type": "application",
                "name": project["name"],
                "version": project["version"],
                "licenses": [{"expression": project["license"]}],
            }
        },
        "components": [
            {
                "type": "library" if c.origin != "debian" else "application",
                "name": c.name,
                "version": c.version,
                "scope": c.scope,
                **({"purl": c.purl} if c.purl else {}),
                **({"licenses": [{"expression": c.licence}]} if c.licence else {}),
                "properties": [{"name": "cim:origin", "value": c.origin}],
            }
            for c in components
        ],
    }


def licences_markdown(components: list[Component], policy: Policy) -> str:
    """``docs/licenses.md``: every component, version and licence, and why each copyleft one is fine."""
    titles = {
        "python": "Python packages (from uv.lock, as installed by `make setup`)",
        "npm": "npm packages (web_viewer: shipped to browsers; tools/node: test tools)",
        "debian": "Debian packages installed by `make setup` (separate programs; versions as installed when generated)",
    }
    lines = [
        "# Third-party components and their licences",
        "",
        "Generated by `make sbom` from the CycloneDX SBOM (`build/sbom/cim-platform.cdx.json`); do not edit by",
        "hand. The licence policy is `licenses/policy.toml`; `tests/test_dependencies.py` fails when a Python or",
        "npm component's licence is unknown or not allowed, or when this page is out of date.",
        "",
        "Scope `required`: needed to run the platform; `optional`: development and test tools only.",
        "",
        "## Copyleft components and why they are fine",
        "",
        "| component | licence | why |",
        "|---|---|---|",
    ]
    for key, entry in sorted(policy.copyleft.items()):
        lines.append(f"| {key} | {entry['license']} | {entry['why']} |")
    for origin, title in titles.items():
        lines += ["", f"## {title}", "", "| component | version | licence | scope |", "|---|---|---|---|"]
        for c in components:
            if c.origin == origin:
                lines.append(f"| {c.name} | {c.version} | {c.licence or 'unknown'} | {c.scope} |")
    return "\n".join(lines) + "\n"


def all_components(python: Path, policy: Policy, *, debian: bool = True) -> list[Component]:
    """Python, npm and (optionally) Debian components, in that order."""
    found = python_components(python, policy) + npm_components(policy)
    return found + (debian_components() if debian else [])


def main(argv: list[str] | None = None) -> int:
    """Write the SBOM and ``docs/licenses.md``; print one line per component the policy refuses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", type=Path, default=ROOT / ".venv" / "bin" / "python")
    args = parser.parse_args(argv)
    policy = Policy.load()
    components = all_components(args.python, policy)
    SBOM_FILE.parent.mkdir(parents=True, exist_ok=True)
    SBOM_FILE.write_text(json.dumps(cyclonedx(components), indent=2) + "\n", encoding="utf-8")
    LICENSES_DOC.write_text(licences_markdown(components, policy), encoding="utf-8")
    refused = [(c, policy.verdict(c)) for c in components if c.origin != "debian" and policy.verdict(c)]
    for c, why in refused:
        print(f"sbom: {c.origin} {c.name} {c.version}: {why}", file=sys.stderr)
    print(f"sbom: {len(components)} components -> {SBOM_FILE.relative_to(ROOT)}, {LICENSES_DOC.relative_to(ROOT)}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
