"""Which Gunicorn a release installs: the supported range, and the pins an
application makes in each kind of packaging file it may ship."""

import io
import tarfile
import zipfile

import pytest

from ansible_collections.wsgi.stack.plugins.module_utils.gunicorn import gunicorn_asked, release_gunicorn, supported

VERSIONS = {"oldest": "27.0.0", "below": "28", "checked": "27.0.1"}


@pytest.mark.parametrize("version", ["27.0.0", "27.0.1", "27.1", "27.9.3"])
def test_releases_in_the_range_are_supported(version):
    assert supported(version, VERSIONS)


@pytest.mark.parametrize("version", ["26.2.0", "23.0.0", "28.0.0", "28", "27", "27.0.1rc1", ">=27", "", "latest"])
def test_other_versions_and_anything_not_a_release_are_not(version):
    assert not supported(version, VERSIONS)


def release(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return release_gunicorn([path], "27.0.1", VERSIONS)


def test_no_gunicorn_in_the_requirements_installs_the_default(tmp_path):
    assert release(tmp_path, "requirements.txt", "flask==3.1.0\n") == {
        "version": "27.0.1", "default": "27.0.1", "pinned_by": "", "refused": ""}


@pytest.mark.parametrize("requirements, version, pinned_by", [
    # A supported pin chooses the release (the name as the file spells it).
    ("Flask>=3\nGunicorn==27.0.0  # the server\n", "27.0.0", "requirements.txt: Gunicorn==27.0.0"),
    # A range that allows the default keeps it.
    ("gunicorn>=20\n", "27.0.1", ""),
])
def test_what_the_requirements_allow_is_installed(tmp_path, requirements, version, pinned_by):
    found = release(tmp_path, "requirements.txt", requirements)
    assert (found["version"], found["pinned_by"], found["refused"]) == (version, pinned_by, "")


@pytest.mark.parametrize("requirements, said", [
    # A pin outside the range, naming both versions.
    ("gunicorn==21.2.0\n", ["pins Gunicorn 21.2.0", "27.0.0 up to, not including, 28", "app_gunicorn_version is 27.0.1"]),
    # A range that excludes the default.
    ("gunicorn<23\n", ["exclude Gunicorn 27.0.1 (app_gunicorn_version)", "gunicorn<23"]),
])
def test_what_no_supported_release_satisfies_is_refused(tmp_path, requirements, said):
    refused = release(tmp_path, "requirements.txt", requirements)["refused"]
    assert all(words in refused for words in said), refused


def test_hashes_continuations_markers_and_includes_are_read(tmp_path):
    (tmp_path / "base.txt").write_text("gunicorn==27.0.0 \\\n    --hash=sha256:abc \\\n    --hash=sha256:def\n")
    found = release(tmp_path, "requirements.txt",
                    "-r base.txt\n-e .\ngit+https://example.invalid/x.git#egg=x\nrequests; python_version > '3'\n")
    assert found["version"] == "27.0.0"
    assert found["pinned_by"] == "requirements.txt: gunicorn==27.0.0"


def test_an_include_loop_is_read_once(tmp_path):
    (tmp_path / "a.txt").write_text("-r requirements.txt\ngunicorn==27.0.0\n")
    assert release(tmp_path, "requirements.txt", "-r a.txt\n")["version"] == "27.0.0"


def test_pep_621_and_poetry_dependencies_are_read(tmp_path):
    found = release(tmp_path, "pyproject.toml", '[project]\nname = "x"\ndependencies = ["gunicorn==21.2.0"]\n')
    assert "pins Gunicorn 21.2.0" in found["refused"]
    found = release(tmp_path, "pyproject.toml",
                    '[tool.poetry.dependencies]\npython = "^3.11"\ngunicorn = "^21.2"\n')
    assert "gunicorn<22,>=21.2" in found["refused"] or "gunicorn>=21.2,<22" in found["refused"]
    found = release(tmp_path, "pyproject.toml", '[tool.poetry.dependencies]\ngunicorn = {version = "27.0.0"}\n')
    assert found["version"] == "27.0.0"


def test_a_wheel_and_an_sdist_are_read_without_being_installed(tmp_path):
    wheel = tmp_path / "app-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("app-1.0.dist-info/METADATA",
                         "Metadata-Version: 2.1\nName: app\nRequires-Dist: gunicorn (==27.0.0)\n"
                         "Requires-Dist: gunicorn==21.2.0; extra == 'old'\n")
    assert release_gunicorn([wheel], "27.0.1", VERSIONS)["version"] == "27.0.0"
    sdist = tmp_path / "app-1.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        data = b'[project]\nname = "app"\ndependencies = ["gunicorn==21.2.0"]\n'
        info = tarfile.TarInfo("app-1.0/pyproject.toml")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    assert "pins Gunicorn 21.2.0" in release_gunicorn([sdist], "27.0.1", VERSIONS)["refused"]


def test_missing_files_and_other_packages_ask_nothing(tmp_path):
    (tmp_path / "requirements.txt").write_text("gunicorn-extras==1.0\ngreenlet\n")
    assert gunicorn_asked([tmp_path / "requirements.txt", tmp_path / "pyproject.toml"]) == []
