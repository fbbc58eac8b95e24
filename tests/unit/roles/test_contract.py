"""The options the roles share (wsgi.stack.common's) are declared alike in
every role's argument specs: the same type, default, choices and element
type as in roles/common/meta/argument_specs.yml, the one source, and every
default the spec states is the one the common defaults file sets."""

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[3] / "roles"
COMMON = yaml.safe_load((ROLES / "common" / "meta" / "argument_specs.yml").read_text())["argument_specs"]["main"]["options"]
DEFAULTS = yaml.safe_load((ROLES / "common" / "defaults" / "main.yml").read_text())
KEYS = ("type", "default", "choices", "elements", "required")


def shared_options():
    for spec_file in sorted(ROLES.glob("*/meta/argument_specs.yml")):
        role = spec_file.parts[-3]
        if role == "common":
            continue
        for entry_point, spec in yaml.safe_load(spec_file.read_text())["argument_specs"].items():
            for name, option in (spec.get("options") or {}).items():
                if name in COMMON:
                    yield pytest.param(name, option, id=f"{role}:{entry_point}:{name}")


@pytest.mark.parametrize("name, option", list(shared_options()))
def test_a_shared_option_is_declared_as_wsgi_stack_common_declares_it(name, option):
    # app_name is required by the roles that act on one application, which
    # common (no tasks) cannot say.
    keys = [key for key in KEYS if not (key == "required" and name == "app_name")]
    assert {key: option.get(key) for key in keys} == {key: COMMON[name].get(key) for key in keys}


@pytest.mark.parametrize("name", sorted(name for name, option in COMMON.items() if "default" in option))
def test_a_default_the_spec_states_is_the_one_the_defaults_file_sets(name):
    assert str(COMMON[name]["default"]) == str(DEFAULTS[name])


def test_every_role_that_acts_on_an_application_shares_some_options():
    roles = {param.id.split(":")[0] for param in shared_options()}
    assert roles >= {"app", "gunicorn", "tls", "nginx"}
