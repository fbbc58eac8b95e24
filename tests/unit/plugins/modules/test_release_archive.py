"""The release tarball: reproducible, content-named, and with times that
packaging tools and web caches can use."""

import io
import tarfile
import time
import zipfile

from ansible_collections.wsgi.stack.plugins.modules.release_archive import EPOCH, _pack, _present


def tree(root, files):
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return str(root)


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_the_same_content_packs_to_the_same_bytes(tmp_path):
    files = {"app/__init__.py": "x = 1\n", "app/static/site.css": "body {}\n", "pyproject.toml": "[project]\n"}
    first = tree(tmp_path / "a", files)
    second = tree(tmp_path / "b", files)
    (tmp_path / "b" / "app" / "__pycache__").mkdir()
    (tmp_path / "b" / "app" / "__pycache__" / "x.pyc").write_text("junk")
    assert _pack(first, {"__pycache__"}) == _pack(second, {"__pycache__"})


def test_every_time_is_one_a_zip_file_can_hold(tmp_path):
    data, _unused = _pack(tree(tmp_path, {"pkg/__init__.py": "", "pkg/data/a.txt": "a"}), set())
    for member in members(data).values():
        assert member.mtime >= EPOCH
        # What flit_core and wheel do with each file's time.
        zipfile.ZipInfo(member.name, date_time=time.gmtime(member.mtime)[:6])


def test_a_same_size_change_gets_a_new_time(tmp_path):
    before = members(_pack(tree(tmp_path / "v1", {"static/site.css": "a {color: red}\n"}), set())[0])
    after = members(_pack(tree(tmp_path / "v2", {"static/site.css": "a {color: tan}\n"}), set())[0])
    assert before["static/site.css"].size == after["static/site.css"].size
    assert before["static/site.css"].mtime != after["static/site.css"].mtime


def test_owners_and_modes_do_not_leak_into_the_archive(tmp_path):
    root = tree(tmp_path, {"run.sh": "#!/bin/sh\n", "notes.txt": "n"})
    (tmp_path / "run.sh").chmod(0o750)
    (tmp_path / "notes.txt").chmod(0o600)
    found = members(_pack(root, set())[0])
    assert (found["run.sh"].mode, found["notes.txt"].mode) == (0o755, 0o644)
    assert {(m.uid, m.gid, m.uname) for m in found.values()} == {(0, 0, "root")}


def test_the_probe_finds_what_is_packed_and_not_what_is_excluded(tmp_path):
    root = tree(tmp_path, {"pyproject.toml": "", "requirements/prod.txt": "", ".venv/setup.py": ""})
    probe = ["./requirements/prod.txt", "pyproject.toml", "setup.py", ".venv/setup.py", "requirements.txt"]
    assert _present(_pack(root, {".venv"})[1], probe) == ["./requirements/prod.txt", "pyproject.toml"]
