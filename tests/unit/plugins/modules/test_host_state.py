"""host_state: what a deploy compares against, read without following links."""

import hashlib
import os
import pwd

import pytest

from ansible_collections.wsgi.stack.plugins.modules.host_state import checksum, describe, group, user


def test_a_missing_path_and_a_path_below_a_file_do_not_exist(tmp_path):
    (tmp_path / "file").write_text("x")
    assert describe(str(tmp_path / "missing")) == {"exists": False}
    assert describe(str(tmp_path / "file" / "below")) == {"exists": False}


def test_a_directory_is_described_with_names_and_an_octal_mode(tmp_path):
    d = tmp_path / "d"
    d.mkdir(mode=0o750)
    os.chmod(d, 0o750)
    out = describe(str(d))
    me = pwd.getpwuid(os.getuid()).pw_name
    assert (out["exists"], out["type"], out["owner"], out["mode"]) == (True, "directory", me, "0750")


def test_a_link_is_reported_as_a_link_and_not_followed(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    out = describe(str(tmp_path / "link"))
    assert out["type"] == "link" and out["target"] == str(target)
    # A dangling link exists too.
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert describe(str(tmp_path / "dangling"))["exists"]


def test_checksum_is_sha1_and_refuses_a_link(tmp_path):
    f = tmp_path / "env"
    f.write_bytes(b"SECRET_KEY=x\n")
    assert checksum(str(f)) == hashlib.sha1(b"SECRET_KEY=x\n").hexdigest()
    (tmp_path / "link").symlink_to(f)
    with pytest.raises(OSError):
        checksum(str(tmp_path / "link"))


def test_unknown_accounts_and_groups_are_none():
    assert user("wsgi-stack-no-such-user") is None
    assert group("wsgi-stack-no-such-group") is None
    assert user("root")["home"] == "/root" and group("root") == {"gid": 0}
