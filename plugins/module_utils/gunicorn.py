# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which Gunicorn a release installs: the supported range, and what an
application's own packaging files ask for. Runs on the controller and reads
files there; nothing of the application is executed."""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.parser import HeaderParser
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version
except ImportError as exc:  # ansible-core depends on it; only a bare interpreter lacks it
    PACKAGING_ERROR = exc
else:
    PACKAGING_ERROR = None

# A release as app_gunicorn_version and an exact pin give it: 27.0.1, 27.0.
RELEASE = re.compile(r"\d+(\.\d+){1,2}")
# pip's options that may end a requirement line (--hash=..., --config-settings ...).
LINE_OPTIONS = re.compile(r"\s--?[a-z][a-z-]*([ =]\S+)?")


def _require_packaging():
    if PACKAGING_ERROR is not None:
        raise RuntimeError(f"the Python package 'packaging' is needed on the controller: {PACKAGING_ERROR}")


def supported(version, versions):
    """True when `version` is a release within versions' oldest..below."""
    _require_packaging()
    version = str(version)
    if not RELEASE.fullmatch(version):
        return False
    return Version(str(versions["oldest"])) <= Version(version) < Version(str(versions["below"]))


def _requirements_file(path, seen):
    """Requirement strings of a pip requirements file, following -r includes."""
    path = path.resolve()
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    found = []
    text = path.read_text(errors="replace").replace("\\\n", " ")
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*", "", line).strip()
        include = re.match(r"(-r|--requirement)[\s=]+(\S+)", line)
        if include:
            found += _requirements_file(path.parent / include.group(2), seen)
        elif line and not line.startswith("-"):
            found.append(LINE_OPTIONS.split(" " + line, maxsplit=1)[0].strip())
    return found


def _poetry(name, constraint):
    """A Poetry dependency as a PEP 508 string: 1.2.3, ^1.2, ~1.2, >=1,<2."""
    if isinstance(constraint, dict):
        constraint = constraint.get("version", "")
    constraint = str(constraint).strip()
    caret = re.fullmatch(r"\^(\d+)(\.\d+)*", constraint)
    if caret:
        return f"{name}>={constraint[1:]},<{int(caret.group(1)) + 1}"
    tilde = re.fullmatch(r"~(\d+)\.(\d+)(\.\d+)?", constraint)
    if tilde:
        return f"{name}>={constraint[1:]},<{tilde.group(1)}.{int(tilde.group(2)) + 1}"
    if RELEASE.fullmatch(constraint):
        return f"{name}=={constraint}"
    return f"{name}{constraint}" if constraint not in ("", "*") else name


def _pyproject(text):
    import tomllib

    data = tomllib.loads(text)
    found = list(data.get("project", {}).get("dependencies", []))
    poetry = data.get("tool", {}).get("poetry", {}).get("dependencies", {})
    found += [_poetry(name, value) for name, value in poetry.items() if name.lower() != "python"]
    return found


def _metadata(text):
    """Requires-Dist of a wheel's METADATA or an sdist's PKG-INFO, extras left out."""
    return [value for value in HeaderParser().parsestr(text).get_all("Requires-Dist", [])
            if "extra" not in value.partition(";")[2]]


# The files of an sdist's top directory that declare its requirements.
SDIST_FILE = re.compile(r"[^/]+/(PKG-INFO|pyproject\.toml)")


def _sdist_files(path):
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if SDIST_FILE.fullmatch(name):
                    yield name, archive.read(name)
        return
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            if member.isfile() and SDIST_FILE.fullmatch(member.name):
                yield member.name, archive.extractfile(member).read()


def _artifact(path):
    if path.name.endswith(".whl"):
        with zipfile.ZipFile(path) as wheel:
            for name in wheel.namelist():
                if re.fullmatch(r"[^/]+\.dist-info/METADATA", name):
                    return _metadata(wheel.read(name).decode(errors="replace"))
        return []
    found = []
    for name, data in _sdist_files(path):
        text = data.decode(errors="replace")
        found += _metadata(text) if name.endswith("PKG-INFO") else _pyproject(text)
    return found


def requirements_of(path):
    """The requirement strings one packaging file of an application declares."""
    path = Path(path)
    if path.name == "pyproject.toml":
        return _pyproject(path.read_text(errors="replace")) if path.is_file() else []
    if path.name.endswith((".whl", ".tar.gz", ".zip")):
        return _artifact(path)
    return _requirements_file(path, set())


def gunicorn_asked(paths):
    """[(file name, requirement)] for each Gunicorn requirement in the files."""
    asked = []
    for path in paths:
        for line in requirements_of(path):
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue  # a URL, an editable install: not a Gunicorn pin
            if canonicalize_name(requirement.name) == "gunicorn":
                asked.append((Path(path).name, requirement))
    return asked


def release_gunicorn(paths, default, versions):
    """The Gunicorn a release installs, given the application's packaging
    files, app_gunicorn_version and the supported range. Returns a dict:
    version (what to install), default, pinned_by (the file and requirement
    that chose it, '' for the default) and refused ('' or why not)."""
    _require_packaging()
    default = str(default)
    span = f"{versions['oldest']} up to, not including, {versions['below']}"
    result = {"version": default, "default": default, "pinned_by": "", "refused": ""}
    asked = gunicorn_asked(paths)
    if not asked:
        return result
    named = ", ".join(f"{name} asks for {requirement}" for name, requirement in asked)
    exact = [(name, requirement, spec.version) for name, requirement in asked
             for spec in requirement.specifier if spec.operator in ("==", "===") and "*" not in spec.version]
    if exact:
        name, requirement, version = exact[0]
        if not supported(version, versions):
            result["refused"] = (f"the application pins Gunicorn {version} ({name}: {requirement}); wsgi.stack "
                                 f"supports Gunicorn {span}, and app_gunicorn_version is {default}: "
                                 f"raise the pin to a supported release, or remove it")
            return result
        result.update(version=version, pinned_by=f"{name}: {requirement}")
    wanted = SpecifierSet(",".join(str(requirement.specifier) for _unused, requirement in asked if requirement.specifier))
    try:
        fits = Version(result["version"]) in wanted
    except InvalidVersion:
        fits = False
    if not fits:
        result["refused"] = (f"the application's requirements ({named}) exclude Gunicorn {result['version']}"
                             f"{'' if exact else ' (app_gunicorn_version)'}; wsgi.stack supports Gunicorn {span}: "
                             f"allow a supported release there, or set app_gunicorn_version to one they allow")
    return result
