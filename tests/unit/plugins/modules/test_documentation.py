"""Every module's DOCUMENTATION, EXAMPLES and RETURN is YAML that ansible-doc
can read: a ': ' inside a plain sentence broke three of them, and only
ansible-lint's log said so, without failing."""

import importlib
import pkgutil

import pytest
import yaml

from ansible_collections.wsgi.stack.plugins import modules

NAMES = sorted(m.name for m in pkgutil.iter_modules(modules.__path__))


@pytest.mark.parametrize("name", NAMES)
def test_the_documentation_is_yaml(name):
    module = importlib.import_module(f"{modules.__name__}.{name}")
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["module"] == name
    assert isinstance(yaml.safe_load(module.EXAMPLES), list)
    assert isinstance(yaml.safe_load(module.RETURN), dict)
    assert doc["options"], name
