#!/usr/bin/python
# Copyright: wsgi.stack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a source tree into a reproducible tarball named after its content."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: release_archive
short_description: Pack an application's source tree into a reproducible release tarball
description:
  - Packs a directory into a gzipped tarball whose bytes depend only on the
    file names, contents, modes and symlinks it holds (no owners, times or
    order of the file system), and derives a release id from that content.
  - Each file's time is derived from its content, from 1980-01-01 on, which
    zip-based wheel builders accept; a changed file gets a new time, so web
    servers give it a new Last-Modified and ETag.
  - Packing the same tree twice gives the same id and the same file, so a
    deploy of unchanged code changes nothing. Meant to run on the controller,
    once per run, so that every host receives the same release.
version_added: 0.1.0
author: wsgi.stack maintainers (@wsgi-stack)
options:
  path:
    description: Directory to pack.
    type: path
    required: true
  dest:
    description: Directory where C(<release_id>.tar.gz) is written.
    type: path
    required: true
  exclude:
    description: Names of files or directories left out, at any depth.
    type: list
    elements: str
    default: [.git, .hg, .svn, __pycache__, .venv, venv, .tox, .pytest_cache, .mypy_cache, node_modules]
  release_id:
    description:
      - Use this id instead of the content hash (for example a git commit).
    type: str
  probe:
    description:
      - Paths, relative to I(path), to look for among what is packed. The
        answer comes from the controller, with no round trip to the hosts.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the archive would be written, without writing it.
      - The app role runs it with C(check_mode=false), so a check compares the hosts with the archive a real run would copy.
  diff_mode:
    support: none
    description: The archive is binary; its content id is returned instead of a diff.
"""

EXAMPLES = r"""
- name: Pack the application
  wsgi.stack.release_archive:
    path: "{{ playbook_dir }}/../app"
    dest: "~/.cache/wsgi-stack/build/hello"
  delegate_to: localhost
  run_once: true
  register: release
"""

RETURN = r"""
release_id:
  description: First 12 hex digits of the SHA-256 of the uncompressed tarball, or I(release_id) when given.
  type: str
  returned: always
  sample: 3f2a9c01d4e7
archive:
  description: Path of the tarball.
  type: str
  returned: always
files:
  description: Number of entries packed.
  type: int
  returned: always
present:
  description: The paths of I(probe) that are in the tarball.
  type: list
  elements: str
  returned: always
"""

import gzip
import hashlib
import io
import os
import stat
import tarfile

from ansible.module_utils.basic import AnsibleModule


def _entries(root, exclude):
    """Relative paths under root, sorted, without excluded names."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude)
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + sorted(f for f in filenames if f not in exclude):
            found.append(os.path.normpath(os.path.join(rel, name)))
    return sorted(found)


# 1980-01-01, the earliest time a zip file can hold: wheel builders (flit_core,
# for one) copy the release's times into the wheel and refuse earlier ones.
EPOCH = 315532800
# Thirty years of seconds after it for the content-derived times below.
SPAN = 30 * 365 * 86400


def _mtime(digest):
    """A stable time derived from a file's content: the same file keeps it in
    every release, and a changed file gets a new one, so nginx's Last-Modified
    and ETag change with the content (a same-size edit included)."""
    return EPOCH + int.from_bytes(digest[:8], "big") % SPAN


def _pack(root, exclude):
    """The uncompressed tar stream of root and the entries it holds."""
    buf = io.BytesIO()
    entries = _entries(root, exclude)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in entries:
            info = tar.gettarinfo(os.path.join(root, rel), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = EPOCH
            info.pax_headers = {}
            # Keep only whether a file is executable: umask and owners differ
            # between checkouts of the same code.
            if info.isdir() or info.mode & stat.S_IXUSR:
                info.mode = 0o755
            else:
                info.mode = 0o644
            if info.isfile():
                with open(os.path.join(root, rel), "rb") as fh:
                    info.mtime = _mtime(hashlib.sha256(fh.read()).digest())
                    fh.seek(0)
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return buf.getvalue(), entries


def _present(entries, probe):
    """The paths of probe (relative to the packed root) among the entries."""
    packed = set(entries)
    return [path for path in probe if os.path.normpath(path) in packed]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            exclude=dict(
                type="list",
                elements="str",
                default=[".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox",
                         ".pytest_cache", ".mypy_cache", "node_modules"],
            ),
            release_id=dict(type="str"),
            probe=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    root, dest = module.params["path"], module.params["dest"]
    if not os.path.isdir(root):
        module.fail_json(msg=f"source directory {root} does not exist or is not a directory")

    data, entries = _pack(root, set(module.params["exclude"]))
    release_id = module.params["release_id"] or hashlib.sha256(data).hexdigest()[:12]
    archive = os.path.join(dest, f"{release_id}.tar.gz")
    result = dict(changed=False, release_id=release_id, archive=archive, files=len(entries),
                  present=_present(entries, module.params["probe"]))

    if not os.path.exists(archive):
        result["changed"] = True
        if not module.check_mode:
            os.makedirs(dest, exist_ok=True)
            tmp = f"{archive}.{os.getpid()}.tmp"
            # mtime=0 and no file name in the gzip header keep the bytes stable.
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
                gz.write(data)
            os.replace(tmp, archive)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
