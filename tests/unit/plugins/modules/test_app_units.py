"""What app_units plans from the unit files on the host."""

import pytest

from ansible_collections.wsgi.stack.plugins.modules import app_units


@pytest.fixture
def systemd(tmp_path, monkeypatch):
    """An /etc/systemd/system and a package's unit directory, empty."""
    etc, lib = tmp_path / "etc", tmp_path / "lib"
    etc.mkdir()
    lib.mkdir()
    monkeypatch.setattr(app_units, "UNIT_DIR", str(etc))
    monkeypatch.setattr(app_units, "OTHER_DIRS", [str(lib)])
    return etc, lib


def ours(app, text):
    return app_units.marker(app) + "\n" + text


def test_units_are_written_once_and_dropped_ones_removed(systemd):
    etc, _lib = systemd
    (etc / "blog-old.timer").write_text(ours("blog", "[Timer]\n"))
    (etc / "blog-worker@.service").write_text(ours("blog", "[Service]\n"))
    # Another application's, and the administrator's own: never ours.
    (etc / "blog-x-worker@.service").write_text(ours("blog-x", "[Service]\n"))
    (etc / "blog-local.service").write_text("[Service]\n")
    installed = app_units.owned("blog", str(etc))
    assert sorted(installed) == ["blog-old.timer", "blog-worker@.service"]
    write, remove, error = app_units.plan("blog", {"blog-worker@.service": "[Service]\n", "blog-new.timer": "[Timer]\n"},
                                          ["blog-worker@1.service", "blog-new.timer"], installed)
    assert error is None
    assert sorted(write) == ["blog-new.timer"] and remove == ["blog-old.timer"]


def test_a_unit_that_is_not_the_applications_is_never_replaced(systemd):
    etc, lib = systemd
    (lib / "redis-server.service").write_text("[Service]\n")
    (etc / "blog-local.service").write_text("[Service]\n")
    for app, name in (("redis", "redis-server.service"), ("blog", "blog-local.service")):
        _w, _r, error = app_units.plan(app, {name: "[Service]\n"}, [], {})
        assert error and f"{name} would replace" in error and "rename the process or timer" in error


@pytest.mark.parametrize("units, enabled, message", [
    ({"other-worker@.service": "x"}, [], "is not a unit name of blog"),
    ({"blog-worker@.service": "x"}, ["blog-mail@1.service"], "no unit file of blog defines it"),
    ({"blog-../x.service": "x"}, [], "is not a unit name of blog"),
])
def test_names_outside_the_applications_set_are_refused(systemd, units, enabled, message):
    assert message in app_units.plan("blog", units, enabled, {})[2]


def test_instances_are_found_by_their_template():
    assert app_units.template_of("blog-worker@12.service") == "blog-worker@.service"
    assert app_units.template_of("blog-nightly.timer") is None


def test_status_says_how_a_job_last_ended():
    row = {"unit": "blog-nightly.service", "active": "inactive", "sub": "dead", "since": "Mon 2026-12-07 03:00:04 UTC",
           "result": "exit-code", "status": "3"}
    assert app_units.line(row).endswith("last run exit-code, exit status 3")
    timer = {"unit": "blog-nightly.timer", "active": "active", "last": "", "next": "Tue 2026-12-08 00:00:00 UTC"}
    assert app_units.line(timer) == "blog-nightly.timer active: last never, next Tue 2026-12-08 00:00:00 UTC"
