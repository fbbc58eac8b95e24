"""The naming rules every role's input checks and the planning filter share."""

import pytest

from ansible_collections.wsgi.stack.plugins.module_utils.names import app_name_refusals, domain_refusals


@pytest.mark.parametrize("name", ["a", "hello", "my-app_2", "a" * 32])
def test_usable_names_are_accepted(name):
    assert app_name_refusals(name) == []


@pytest.mark.parametrize("name", ["", "Hello", "2fast", "-x", "a" * 33, "hello\n", "he llo", "../etc", 3])
def test_names_that_cannot_be_a_user_or_a_directory_are_refused(name):
    assert app_name_refusals(name) == [
        "app_name must be 1-32 lower case letters, digits, '-' or '_', starting with a letter;"
        f" got {str(name)!r}"]


@pytest.mark.parametrize("name", ["ca", "nginx", "wsgi-stack", "wsgi-stack-default"])
def test_names_the_collection_keeps_are_refused(name):
    [message] = app_name_refusals(name)
    assert message.startswith(f"app_name {name!r} is reserved by wsgi.stack")


def test_names_that_only_contain_a_reserved_one_are_accepted():
    assert app_name_refusals("cart") == app_name_refusals("my-nginx") == []


@pytest.mark.parametrize("domains", [["hello.test"], ["*.hello.test", "Hello.Test", "localhost"], ["a" * 63 + ".test"]])
def test_dns_names_and_wildcards_are_accepted(domains):
    assert domain_refusals(domains, "hello") == []


@pytest.mark.parametrize("domains, invalid", [
    ([], "none given"),
    (None, "none given"),
    (["hello.test", "bad_name!"], "bad_name!"),
    (["hello.test\n"], "hello.test\n"),
    (["a.*.test"], "a.*.test"),
    (["-x.test", "x-.test"], "-x.test, x-.test"),
    (["a" * 64 + ".test"], "a" * 64 + ".test"),
])
def test_lists_without_names_or_with_invalid_ones_are_refused(domains, invalid):
    assert domain_refusals(domains, "hello") == [
        "app_domains must list the DNS names of hello (letters, digits, '-', dots; a leading '*.'"
        f" for a wildcard); invalid: {invalid}"]
