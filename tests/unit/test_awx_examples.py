"""examples/awx against the collection: every job template runs a petra.core playbook, every survey question sets a
variable that playbook accepts (with a type it accepts), every required variable is answered, and every credential
injector sets something petra.core reads, secrets only into no_log options.
"""

from __future__ import annotations

import ast
import json
import os
import re

import pytest

from ansible_collections.petra.core.tests.support import awx

ROOT = awx.ROOT
PROJECT = os.path.join(awx.AWX_EXAMPLES, "project")
EXPECTED_PLAYBOOKS = {"bundle_create.yml", "bundle_transfer.yml", "bundle_receive.yml", "bundle_verify.yml",
                      "bundle_load.yml", "cluster_create.yml", "cluster_upgrade.yml", "cluster_destroy.yml"}
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}
# The survey types whose answers Ansible's argument spec validation turns into each option type.
SURVEY_TYPES_FOR = {"str": {"text", "textarea", "password", "multiplechoice"}, "path": {"text"},
                    "int": {"integer"}, "bool": {"multiplechoice"}, "list": {"text", "textarea", "multiselect"},
                    "dict": {"textarea"}}
DEFINED = re.compile(r"^\s*([a-z_][a-z0-9_]*) is defined\s*$")
# A playbook's own variable with a default and its choices: ``name | default('value') in ['value', 'other']``.
CHOICE = re.compile(r"^\s*([a-z_][a-z0-9_]*) \| default\('([^']*)'\) in (\[[^\]]*\])\s*$")
FILENAME = re.compile(r"tower\.filename\.(\w+)")

JOB_TEMPLATES = awx.job_templates()
CREDENTIAL_TYPES = awx.credential_types()


def role_options(role, entry_point="main"):
    specs = awx.load_yaml(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))["argument_specs"]
    assert entry_point in specs, "role %s has no entry point %s" % (role, entry_point)
    return specs[entry_point]["options"]


def all_role_options():
    options = {}
    for role in os.listdir(os.path.join(ROOT, "roles")):
        for entry_point in awx.load_yaml(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml"))[
                "argument_specs"]:
            options.update(role_options(role, entry_point))
    return options


def _role_name(name):
    assert name.startswith("petra.core."), "%s is not a petra.core role" % name
    return name[len("petra.core."):]


def playbook_variables(playbook):
    """{variable: spec} a petra.core playbook accepts: its roles' options (by entry point), the play's own vars and the
    variables it asserts are defined (those with ``required: true``) or one of a list (with those ``choices``)."""
    accepted = {}
    for play in awx.load_yaml(os.path.join(ROOT, "playbooks", playbook)):
        for name, value in (play.get("vars") or {}).items():
            accepted[name] = {"type": {bool: "bool", int: "int"}.get(type(value), "str"), "default": value}
        for role in play.get("roles") or []:
            accepted.update(role_options(_role_name(role["role"] if isinstance(role, dict) else role)))
        for task in play.get("tasks") or []:
            include = task.get("ansible.builtin.include_role") or task.get("ansible.builtin.import_role")
            if include:
                accepted.update(role_options(_role_name(include["name"]), include.get("tasks_from", "main")))
            for condition in (task.get("ansible.builtin.assert") or {}).get("that") or []:
                match = DEFINED.match(condition)
                if match:
                    accepted[match.group(1)] = {"type": "str", "required": True}
                match = CHOICE.match(condition)
                if match:
                    accepted[match.group(1)] = {"type": "str", "default": match.group(2),
                                                "choices": ast.literal_eval(match.group(3))}
    return accepted


def imported_playbook(project_playbook):
    plays = awx.load_yaml(os.path.join(PROJECT, project_playbook))
    assert len(plays) == 1 and "ansible.builtin.import_playbook" in plays[0], \
        "%s should import one petra.core playbook" % project_playbook
    target = plays[0]["ansible.builtin.import_playbook"]
    assert target.startswith("petra.core."), target
    return target[len("petra.core."):] + ".yml"


def test_every_playbook_of_the_project_has_a_job_template():
    assert set(os.listdir(PROJECT)) == EXPECTED_PLAYBOOKS
    assert {template["playbook"] for template in JOB_TEMPLATES.values()} == EXPECTED_PLAYBOOKS


@pytest.mark.parametrize("name", sorted(JOB_TEMPLATES))
def test_the_job_template_runs_a_playbook_of_the_collection(name):
    template = JOB_TEMPLATES[name]
    target = imported_playbook(template["playbook"])
    assert os.path.isfile(os.path.join(ROOT, "playbooks", target)), "%s imports petra.core.%s, which the " \
        "collection does not have" % (template["playbook"], target[:-4])
    for type_name in template["credential_types"]:
        assert type_name in CREDENTIAL_TYPES or type_name in awx.BUILTIN_CREDENTIAL_TYPES, type_name


@pytest.mark.parametrize("name", sorted(JOB_TEMPLATES))
def test_survey_questions_set_variables_the_playbook_accepts(name):
    template = JOB_TEMPLATES[name]
    accepted = playbook_variables(imported_playbook(template["playbook"]))
    variables = [question["variable"] for question in template["survey"]]
    assert len(variables) == len(set(variables)), "a variable is asked twice in %s" % name
    for question in template["survey"]:
        variable, kind = question["variable"], question["type"]
        assert variable in accepted, "%s asks for %s, which petra.core.%s does not accept" % (
            name, variable, imported_playbook(template["playbook"])[:-4])
        option = accepted[variable]
        assert kind in SURVEY_TYPES and kind in SURVEY_TYPES_FOR[option.get("type", "str")], \
            "%s: %s is of type %s, not a %s question" % (name, variable, option.get("type", "str"), kind)
        if option.get("no_log"):
            assert kind == "password", "%s: %s is a secret; ask for it as a password" % (name, variable)
        if kind == "multiplechoice":
            assert question.get("default") in question["choices"]
            if option.get("type") == "bool":
                assert set(question["choices"]) == {"true", "false"}
            elif "choices" in option:
                assert set(question["choices"]) <= {str(choice) for choice in option["choices"]}
    # The survey's defaults make a valid launch once the required questions are answered.
    answers = {question["variable"]: (1 if question["type"] == "integer" else "x") for question in template["survey"]
               if question.get("required") and question.get("default") is None}
    assert set(awx.survey_answers(template, answers)) >= set(answers)


@pytest.mark.parametrize("name", sorted(JOB_TEMPLATES))
def test_required_variables_are_answered_by_the_survey_or_a_credential(name):
    template = JOB_TEMPLATES[name]
    accepted = playbook_variables(imported_playbook(template["playbook"]))
    answered = {question["variable"] for question in template["survey"] if question.get("required")}
    for type_name in template["credential_types"]:
        answered |= set((CREDENTIAL_TYPES.get(type_name, {}).get("injectors") or {}).get("extra_vars") or {})
    missing = sorted(variable for variable, option in accepted.items() if option.get("required")
                     and variable not in answered)
    assert not missing, "%s leaves required variables unset: %s" % (name, missing)


def petra_reads_environment_variable(name):
    """True when petra.core's own code reads the variable by name (plugins/)."""
    for directory, _dirs, files in os.walk(os.path.join(ROOT, "plugins")):
        for file_name in files:
            if file_name.endswith(".py"):
                with open(os.path.join(directory, file_name), encoding="utf-8") as handle:
                    if re.search(r"[\"']%s[\"']" % re.escape(name), handle.read()):
                        return True
    return False


@pytest.mark.parametrize("name", sorted(CREDENTIAL_TYPES))
def test_credential_injectors_set_what_petra_reads(name):
    credential_type = CREDENTIAL_TYPES[name]
    fields = {field["id"]: field for field in credential_type["inputs"]["fields"]}
    assert set(credential_type["inputs"].get("required", [])) <= set(fields)
    injectors = credential_type["injectors"]
    files = {label.split(".", 1)[1] for label in injectors.get("file", {})}
    options = all_role_options()
    templates = list(injectors.get("file", {}).values()) + list(injectors.get("env", {}).values()) + \
        list(injectors.get("extra_vars", {}).values())
    for text in templates:
        assert awx.template_names(text) <= set(fields) | {"tower"}, "%s: %r reads an unknown input" % (name, text)
        assert set(FILENAME.findall(text)) <= files, "%s: %r names a file no injector writes" % (name, text)
    for variable, text in injectors.get("extra_vars", {}).items():
        assert variable in options, "%s sets %s, which no petra.core role reads" % (name, variable)
        secret_inputs = {field for field in awx.template_names(text) if fields.get(field, {}).get("secret")}
        if secret_inputs:
            assert options[variable].get("no_log"), "%s puts the secret %s into %s, which is not no_log" % (
                name, sorted(secret_inputs), variable)
    for variable in injectors.get("env", {}):
        assert petra_reads_environment_variable(variable), "%s sets %s, which petra.core does not read" % (
            name, variable)
    # A secret input never reaches the job's environment: it goes into a file or a no_log variable.
    for variable, text in injectors.get("env", {}).items():
        assert not {field for field in awx.template_names(text) if fields.get(field, {}).get("secret")}, variable


def test_the_registry_auth_file_holds_any_password(tmp_path):
    password = 'p"a\\ss{{ not a template }}\nword'
    environment, extra_vars_file = awx.inject(
        CREDENTIAL_TYPES["Petra registry"], {"host": "registry.high:5000", "username": "loader", "password": password,
                                             "ca": "-----BEGIN CERTIFICATE-----\n"}, str(tmp_path))
    with open(environment["REGISTRY_AUTH_FILE"], encoding="utf-8") as handle:
        assert json.load(handle) == {"auths": {"registry.high:5000": {"username": "loader", "password": password}}}
    assert oct(os.stat(environment["REGISTRY_AUTH_FILE"]).st_mode & 0o777) == "0o600"
    extra_vars = awx.load_yaml(extra_vars_file)
    with open(extra_vars["bundle_load_ca_file"], encoding="utf-8") as handle:
        assert handle.read() == "-----BEGIN CERTIFICATE-----\n"
    _env, without_ca = awx.inject(CREDENTIAL_TYPES["Petra registry"],
                                  {"host": "r:5000", "username": "u", "password": "p"}, str(tmp_path / "no-ca"))
    # No CA: the roles get an empty path and leave ca_file out (the system trust store).
    assert awx.load_yaml(without_ca) == {"bundle_build_ca_file": "", "bundle_load_ca_file": ""}


def test_the_kms_signing_key_becomes_an_awskms_reference(tmp_path):
    kms = CREDENTIAL_TYPES["Petra signing key (AWS KMS)"]
    _env, path = awx.inject(kms, {"kms_key": "alias/petra"}, str(tmp_path / "a"))
    assert awx.load_yaml(path)["bundle_build_signing_key"] == "awskms:///alias/petra"
    _env, path = awx.inject(kms, {"kms_key": "alias/petra", "kms_endpoint": "kms.vpce.internal"}, str(tmp_path / "b"))
    assert awx.load_yaml(path)["bundle_transfer_signing_key"] == "awskms://kms.vpce.internal/alias/petra"


def test_a_survey_launch_is_refused_like_awx_refuses_it():
    load = JOB_TEMPLATES["Petra: bundle load"]
    with pytest.raises(awx.SurveyError, match="bundle_load_src is required"):
        awx.survey_answers(load, {"bundle_load_public_key": "k.pub", "bundle_load_registry": "r"})
    with pytest.raises(awx.SurveyError, match="one of"):
        awx.survey_answers(load, {"bundle_load_src": "b", "bundle_load_public_key": "k", "bundle_load_registry": "r",
                                  "bundle_load_allow_downgrade": "yes"})
    with pytest.raises(awx.SurveyError, match="not survey questions"):
        awx.survey_answers(load, {"bundle_load_parallel": 8})


@pytest.mark.parametrize("name", ["Petra: cluster create", "Petra: cluster upgrade", "Petra: cluster destroy"])
def test_the_cluster_jobs_run_either_model(name):
    """An AWX user picks the model in the survey; Cluster API mode's own answers are the management cluster's
    kubeconfig (a credential: it holds a client key) and, to create or roll, the VPC and the Machines' version."""
    template = JOB_TEMPLATES[name]
    questions = {question["variable"]: question for question in template["survey"]}
    assert questions["petra_provisioner"]["choices"] == ["standalone", "capi"]
    assert questions["petra_provisioner"]["default"] == "standalone"
    management = CREDENTIAL_TYPES["Petra management cluster (Cluster API)"]
    assert management["name"] in template["credential_types"]
    assert set(management["injectors"]["extra_vars"]) == {"cluster_capi_management_kubeconfig"}
    capi_options = role_options("cluster_capi", "destroy" if name.endswith("destroy") else "main")
    assert "cluster_capi_management_kubeconfig" in capi_options
    if not name.endswith("destroy"):
        for variable in ("cluster_capi_vpc_id", "cluster_capi_kubernetes_version"):
            assert variable in capi_options and not questions[variable]["required"]
    # The same node answers feed either model: the Cluster API role reads the cluster_standalone_* variables.
    assert all(variable.startswith(("cluster_standalone_", "cluster_capi_", "petra_provisioner"))
               for variable in questions)
