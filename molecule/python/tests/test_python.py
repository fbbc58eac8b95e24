"""What a user of wsgi.stack.python relies on, checked on the converged host."""

import re

SCENARIO_PLAYBOOK = "converge.yml"


def test_interpreter_and_venv_module_installed(host):
    for pkg in ("python3", "python3-venv"):
        assert host.package(pkg).is_installed, pkg
    out = host.check_output("/usr/bin/python3 -c 'import ensurepip, venv; print(\"ok\")'")
    assert out == "ok"


def test_build_tools_installed_when_asked(host):
    assert host.package("python3-dev").is_installed
    assert host.exists("gcc")
    includes = host.check_output("/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"include\"])'")
    assert host.file(f"{includes}/Python.h").exists


def test_system_interpreter_stays_externally_managed(host):
    stdlib = host.check_output("/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()[\"stdlib\"])'")
    assert host.file(f"{stdlib}/EXTERNALLY-MANAGED").is_file


def test_unprivileged_user_builds_a_venv_with_a_compiled_package(host):
    # markupsafe is built from source on purpose: its C speedups only exist
    # when the compiler and headers work (its build falls back to pure
    # Python silently, hence the import of _speedups).
    script = (
        "set -e; cd /home/tester; rm -rf venv; "
        "/usr/bin/python3 -m venv venv; "
        "venv/bin/pip install --quiet --no-cache-dir --no-binary markupsafe markupsafe==3.0.2; "
        "venv/bin/python -c 'import markupsafe._speedups; print(\"compiled\")'"
    )
    cmd = host.run("sudo -u tester env HOME=/home/tester sh -c %s", script)
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip().endswith("compiled")
    venv = host.file("/home/tester/venv/bin/python")
    assert venv.exists and host.file("/home/tester/venv").user == "tester"


def test_check_mode_on_converged_host_changes_nothing(ansible_playbook):
    run = ansible_playbook(SCENARIO_PLAYBOOK, "--check", "--diff")
    assert run.rc == 0, run.output
    assert run.recap() and run.changed() == 0, run.output


def test_too_high_minimum_version_fails_with_a_clear_message(ansible_playbook):
    run = ansible_playbook(SCENARIO_PLAYBOOK, extra_vars={"python_min_version": "99.0"})
    assert run.rc != 0
    assert re.search(r"/usr/bin/python3 is Python 3\.\d+\.\d+, but python_min_version is 99\.0", run.output), run.output
    assert run.changed() == 0, run.output


def test_malformed_minimum_version_is_rejected(ansible_playbook):
    run = ansible_playbook(SCENARIO_PLAYBOOK, extra_vars={"python_min_version": "three"})
    assert run.rc != 0
    assert "python_min_version must look like 3.11 or 3.11.4, not 'three'" in run.output, run.output
    assert run.changed() == 0, run.output


def test_an_unquoted_minimum_version_is_refused(ansible_playbook):
    """YAML reads 3.10 as the number 3.1, which an older Python would pass."""
    run = ansible_playbook(SCENARIO_PLAYBOOK, extra_vars={"python_min_version": 3.1})
    assert run.rc != 0
    assert 'python_min_version must be quoted, such as "3.10"' in run.output, run.output
    assert run.changed() == 0, run.output


def test_argument_specs_reject_a_wrong_type(ansible_playbook):
    run = ansible_playbook(SCENARIO_PLAYBOOK, extra_vars={"python_build_deps": "maybe"})
    assert run.rc != 0
    assert "python_build_deps" in run.output and "bool" in run.output, run.output
    assert run.changed() == 0, run.output
