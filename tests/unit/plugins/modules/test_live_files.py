"""live_files: what served before a deploy is put back exactly, links and absences included."""

import os

import pytest

from ansible_collections.wsgi.stack.plugins.modules.live_files import Refused, keep, link_target, restore


@pytest.fixture
def live(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "env").write_text("SECRET_KEY=old\n")
    os.chmod(etc / "env", 0o640)
    (etc / "site.conf").write_text("server {}\n")
    (etc / "enabled.conf").symlink_to(etc / "site.conf")
    return etc


def paths(etc):
    return [str(etc / name) for name in ("env", "site.conf", "enabled.conf", "unit.service")]


def test_nothing_differs_right_after_keeping(live, tmp_path):
    store = str(tmp_path / "store")
    kept = keep(paths(live), store)
    assert list(kept.values()) == ["file", "file", "link", "absent"]
    assert restore(paths(live), store, check_mode=False) == []
    assert oct(os.stat(store).st_mode & 0o777) == "0o700"


def test_changed_content_mode_link_and_new_file_are_put_back(live, tmp_path):
    store = str(tmp_path / "store")
    site_mode = oct(os.stat(live / "site.conf").st_mode & 0o777)
    keep(paths(live), store)
    (live / "env").write_text("SECRET_KEY=new\n")
    os.chmod(live / "site.conf", 0o600)
    (live / "other.conf").write_text("x")
    (live / "enabled.conf").unlink()
    (live / "enabled.conf").symlink_to(live / "other.conf")
    (live / "unit.service").write_text("[Service]\n")

    assert restore(paths(live), store, check_mode=True) == paths(live)
    assert (live / "env").read_text() == "SECRET_KEY=new\n"  # check mode changed nothing

    assert restore(paths(live), store, check_mode=False) == paths(live)
    assert (live / "env").read_text() == "SECRET_KEY=old\n"
    assert oct(os.stat(live / "env").st_mode & 0o777) == "0o640"
    assert oct(os.stat(live / "site.conf").st_mode & 0o777) == site_mode
    assert os.readlink(live / "enabled.conf") == str(live / "site.conf")
    assert not (live / "unit.service").exists()
    assert not [name for name in os.listdir(live) if name.startswith(".wsgi-stack-")]
    assert restore(paths(live), store, check_mode=False) == []


def test_a_removed_file_comes_back(live, tmp_path):
    store = str(tmp_path / "store")
    keep(paths(live), store)
    (live / "env").unlink()
    assert restore(paths(live), store, check_mode=False) == [str(live / "env")]
    assert (live / "env").read_text() == "SECRET_KEY=old\n"


def test_a_link_is_kept_as_a_link_not_as_what_it_points_to(live, tmp_path):
    store = str(tmp_path / "store")
    keep(paths(live), store)
    (live / "site.conf").write_text("changed through the link's target\n")
    # Only the target changed: the link itself is as kept.
    assert restore([str(live / "enabled.conf")], store, check_mode=False) == []


def test_refuses_a_directory_and_a_path_that_was_never_kept(live, tmp_path):
    store = str(tmp_path / "store")
    with pytest.raises(Refused, match="neither a regular file nor a link"):
        keep([str(live)], store)
    with pytest.raises(Refused, match="nothing was kept"):
        restore(paths(live), str(tmp_path / "empty"), check_mode=False)
    keep(paths(live)[:1], store)
    with pytest.raises(Refused, match="not kept in"):
        restore(paths(live), store, check_mode=False)


def test_keeping_again_replaces_what_was_kept(live, tmp_path):
    store = str(tmp_path / "store")
    keep(paths(live), store)
    (live / "env").write_text("SECRET_KEY=second\n")
    keep(paths(live), store)
    (live / "env").write_text("SECRET_KEY=third\n")
    restore(paths(live), store, check_mode=False)
    assert (live / "env").read_text() == "SECRET_KEY=second\n"


def test_a_link_is_reported_with_its_target_and_anything_else_as_none(live):
    assert link_target(str(live / "enabled.conf")) == str(live / "site.conf")
    assert link_target(str(live / "env")) is None
    assert link_target(str(live / "absent")) is None
