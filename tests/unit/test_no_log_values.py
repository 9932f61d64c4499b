"""The action plugins take their secrets from Ansible's argument validator, at any depth, and mask them everywhere."""

import importlib
import json
import os

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.petra.core.plugins.module_utils.bundle.errors import BundleError
from ansible_collections.petra.core.plugins.module_utils.adapters.no_log import secret_values
from ansible_collections.petra.core.plugins.plugin_utils.controller_action import ControllerAction

ACTION_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "action")
ACTIONS = sorted(name[:-len(".py")] for name in os.listdir(ACTION_DIR) if name.startswith("petra_"))


def action(name):
    return importlib.import_module("ansible_collections.petra.core.plugins.action.%s" % name).ActionModule


class Secrets:
    """Distinct secrets, none a part of another."""

    def __init__(self):
        self.given = []

    def new(self, where):
        secret = "S%03d-%s-secret" % (len(self.given), where)
        self.given.append(secret)
        return secret


def filler(option):
    """A valid, non-secret value for a required option."""
    if option.get("choices"):
        return option["choices"][0]
    kind = option.get("type", "str")
    if option.get("options"):
        item = {name: filler(sub) for name, sub in option["options"].items() if sub.get("required")}
        return [item] if kind == "list" else item
    return {"list": ["x"], "dict": {}, "int": 1, "bool": False}.get(kind, "x")


def with_secrets(spec, secrets, where=""):
    """Arguments for ``spec`` with a secret in every no_log option at any depth (a no_log dict gets two values, a
    list of dicts two elements), and a filler in every other required option. Returns None when no option needs one."""
    args = {}
    for name, option in spec.items():
        path = where + name
        if option.get("no_log"):
            kind = option.get("type", "str")
            if kind == "dict":
                args[name] = {"A": secrets.new(path + ".A"), "B": secrets.new(path + ".B")}
            elif kind == "list":
                args[name] = [secrets.new(path + "[0]"), secrets.new(path + "[1]")]
            else:
                args[name] = secrets.new(path)
        elif option.get("options"):
            if option.get("type") == "list":
                items = [with_secrets(option["options"], secrets, "%s[%d]." % (path, index)) for index in (0, 1)]
                if items[0] is not None:
                    args[name] = items
            else:
                item = with_secrets(option["options"], secrets, path + ".")
                if item is not None:
                    args[name] = item
        if name not in args and option.get("required"):
            args[name] = filler(option)
    return args if args or not where else None


def valid_args(plugin, secrets):
    """Arguments the plugin's validator accepts, with a secret in each of its no_log options."""
    args = with_secrets(plugin.ARGUMENT_SPEC, secrets)
    for condition in plugin.REQUIRED_IF:
        key, value, requirements = condition[:3]
        if args.get(key, plugin.ARGUMENT_SPEC[key].get("default")) != value:
            continue
        if len(condition) > 3 and condition[3] and any(name in args for name in requirements):
            continue
        for name in requirements[:1] if len(condition) > 3 and condition[3] else requirements:
            args.setdefault(name, filler(plugin.ARGUMENT_SPEC[name]))
    validation = plugin.validator().validate(args)
    assert validation.error_messages == [], validation.error_messages
    return args


class Nested(ControllerAction):
    """Shapes no module has yet: lists of dicts with no_log suboptions, dicts within dicts, defaults."""

    ARGUMENT_SPEC = dict(
        clusters=dict(type="list", elements="dict", options=dict(
            name=dict(type="str", required=True),
            auth=dict(type="dict", options=dict(user=dict(type="str"), password=dict(type="str", no_log=True))),
            tokens=dict(type="list", elements="str", no_log=True),
        )),
        outer=dict(type="dict", options=dict(inner=dict(type="dict", options=dict(
            key=dict(type="str", no_log=True, default="S900-default-secret"))))),
    )

    def run_on_controller(self, params, task_vars, check_mode):
        raise NotImplementedError


class Choosy(Nested):
    ARGUMENT_SPEC = dict(Nested.ARGUMENT_SPEC, mode=dict(type="str", choices=["a", "b"], no_log=True))


def has_secrets(plugin):
    secrets = Secrets()
    with_secrets(plugin.ARGUMENT_SPEC, secrets)
    return bool(secrets.given)


PLUGINS = [plugin for plugin in [action(name) for name in ACTIONS] + [Nested] if has_secrets(plugin)]
IDS = [plugin.__module__.rsplit(".", 1)[-1] if plugin is not Nested else "nested" for plugin in PLUGINS]


def echo(received):
    """What a careless tool or library might do with its input: return it, warn with it, and fail with it."""

    def work(params):
        received.append(params)
        return {"changed": False, "echo": params, "msg": repr(params), "warnings": ["seen %r" % (params,)]}
    return work


def test_every_plugin_with_secrets_is_covered():
    assert IDS == ["petra_bundle", "petra_diode", "petra_evidence", "petra_flatcar", "petra_verify", "nested"]
    nested = [name for name in ACTIONS if any(
        sub.get("no_log") for option in action(name).ARGUMENT_SPEC.values() for sub in (option.get("options") or {}).values())]
    assert nested == ["petra_bundle", "petra_flatcar"]


@pytest.mark.parametrize("plugin", PLUGINS, ids=IDS)
def test_secrets_are_collected_at_every_depth(plugin):
    secrets = Secrets()
    args = valid_args(plugin, secrets)
    collected = secret_values(plugin.ARGUMENT_SPEC, plugin.validator().validate(args))
    assert set(secrets.given) <= collected
    if plugin is Nested:
        assert len(secrets.given) == 7
        defaulted = secret_values(plugin.ARGUMENT_SPEC, plugin.validator().validate({"outer": {"inner": {}}}))
        assert defaulted == {"S900-default-secret"}


@pytest.mark.parametrize("plugin", PLUGINS, ids=IDS)
def test_results_warnings_and_failures_are_masked(plugin):
    secrets = Secrets()
    args = valid_args(plugin, secrets)
    received = []
    result = plugin.checked_run(args, echo(received))
    assert all(secret in repr(received) for secret in secrets.given)
    text = json.dumps(result)
    assert not [secret for secret in secrets.given if secret in text]
    assert "********" in result["msg"] and result["changed"] is False

    def petra_failure(params):
        raise BundleError("cannot read %r" % (params,), hint="Check %r" % (params,), reason="corrupt", given=params)

    def library_failure(params):
        try:
            raise KeyError(repr(params))
        except KeyError as exc:
            raise ValueError("bad input %r" % (params,)) from exc

    for work in (petra_failure, library_failure):
        result = plugin.checked_run(args, work)
        text = json.dumps(result)
        assert result["failed"] is True and "********" in result["msg"]
        assert not [secret for secret in secrets.given if secret in text]
    assert result["reason"] == "internal-error" and "KeyError" in result["exception"]
    assert "ValueError: bad input" in result["exception"] and "Petra did not expect" in result["msg"]


def test_invalid_arguments_are_masked_too():
    args = {"clusters": [{"name": "one", "auth": {"password": "S901-password-secret"}, "tokens": ["S902-token-secret"],
                          "bogus": True}], "mode": "S903-not-a-choice-secret"}
    result = Choosy.checked_run(args, echo([]))
    assert result["failed"] is True and "clusters.bogus" in result["msg"] and "must be one of" in result["msg"]
    assert "S90" not in json.dumps(result)


def test_values_are_masked_as_given_and_as_converted():
    """``KEY=value`` strings become dicts: the validator records what was given, the code sees (and may echo) the
    parts."""
    plugin = action("petra_bundle")
    spec = plugin.ARGUMENT_SPEC
    given = {"scan": {"scanner": "trivy", "env": "TOKEN=S904-converted-secret"}}
    assert "S904-converted-secret" not in ArgumentSpecValidator(spec).validate(given)._no_log_values
    assert {"TOKEN=S904-converted-secret", "S904-converted-secret"} <= secret_values(
        spec, ArgumentSpecValidator(spec).validate(given))
    flatcar = action("petra_flatcar").ARGUMENT_SPEC
    assert "S905-user-data" in secret_values(
        flatcar, ArgumentSpecValidator(flatcar).validate({"agents": "count=1 user_data=S905-user-data"}))
