"""What AWX does with examples/awx before a job starts, done the way AWX does it, for the tests.

AWX renders a credential type's injectors in a sandboxed Jinja environment whose namespace holds the credential's
non-empty inputs and ``tower.filename`` (``file`` injectors are written into the job's private data directory,
mode 0600, before the others are rendered); ``env`` injectors go into the job's environment, ``extra_vars``
injectors into a file of the private data directory (mode 0400) passed with ``-e @file``, every string tagged
``!unsafe``. Survey answers are checked against the survey (required, type, choices, bounds), completed with its
defaults, and go with the template's other variables into ``env/extravars``.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import yaml
from jinja2 import meta, sandbox

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
AWX_EXAMPLES = os.path.join(ROOT, "examples", "awx")
# AWX's own credential types the job templates may name (injected by AWX itself, not defined in examples/awx).
BUILTIN_CREDENTIAL_TYPES = {"Amazon Web Services"}


class _Loader(yaml.SafeLoader):
    """Reads Ansible's ``!unsafe`` tag as the plain string it marks (configure.yml passes it on untemplated)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def load_yaml(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def credential_types():
    return {item["name"]: item for item in load_yaml(os.path.join(AWX_EXAMPLES, "credential_types.yml"))
            ["petra_awx_credential_types"]}


def job_templates():
    return {item["name"]: item for item in load_yaml(os.path.join(AWX_EXAMPLES, "job_templates.yml"))
            ["petra_awx_job_templates"]}


def inventory():
    return load_yaml(os.path.join(AWX_EXAMPLES, "job_templates.yml"))["petra_awx_inventory"]


def template_names(text):
    """The top-level names an injector template reads."""
    return meta.find_undeclared_variables(sandbox.ImmutableSandboxedEnvironment().parse(text))


class _Namespace:
    pass


def _unsafe_dump(data):
    """YAML like AWX's safe_dump: every string tagged ``!unsafe`` so Ansible never templates a secret."""
    class Dumper(yaml.SafeDumper):
        pass
    Dumper.add_representer(str, lambda dumper, value: dumper.represent_scalar("!unsafe", value, style="'"))
    return yaml.dump(data, Dumper=Dumper, default_flow_style=False)


def inject(credential_type, inputs, private_data_dir):
    """(environment, path of the extra vars file or None) for a credential of this type, as AWX injects it."""
    env_dir = os.path.join(private_data_dir, "env")
    os.makedirs(env_dir, exist_ok=True)
    sandbox_env = sandbox.ImmutableSandboxedEnvironment()
    # AWX leaves empty inputs out of the namespace: a template reading one renders it as empty.
    namespace = {name: value for name, value in inputs.items() if value not in (None, "")}
    tower = _Namespace()
    namespace["tower"] = tower
    injectors = credential_type.get("injectors") or {}
    for label, template in (injectors.get("file") or {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(sandbox_env.from_string(template).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." not in label:
            tower.filename = path
        else:
            if not hasattr(tower, "filename"):
                tower.filename = _Namespace()
            setattr(tower.filename, label.split(".", 1)[1], path)
    environment = {name: sandbox_env.from_string(template).render(**namespace)
                   for name, template in (injectors.get("env") or {}).items()}
    extra_vars = {name: sandbox_env.from_string(template).render(**namespace)
                  for name, template in (injectors.get("extra_vars") or {}).items()}
    path = None
    if extra_vars:
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w") as out:
            out.write(_unsafe_dump(extra_vars))
        os.chmod(path, stat.S_IRUSR)
    return environment, path


class SurveyError(ValueError):
    pass


def survey_answers(job_template, answers):
    """The survey's variables for these answers, refused the way AWX refuses a launch."""
    questions = {question["variable"]: question for question in job_template["survey"]}
    unknown = set(answers) - set(questions)
    if unknown:
        raise SurveyError("not survey questions: %s" % sorted(unknown))
    result = {}
    for name, question in questions.items():
        value = answers.get(name, question.get("default"))
        if value in (None, ""):
            if question.get("required"):
                raise SurveyError("%s is required" % name)
            continue
        kind = question["type"]
        if kind == "integer":
            if not isinstance(value, int) or isinstance(value, bool):
                raise SurveyError("%s must be an integer" % name)
            if question.get("min") is not None and value < question["min"] or \
                    question.get("max") is not None and value > question["max"]:
                raise SurveyError("%s out of bounds" % name)
        elif kind == "multiplechoice":
            if value not in question["choices"]:
                raise SurveyError("%s must be one of %s" % (name, question["choices"]))
        elif kind in ("text", "textarea", "password"):
            if not isinstance(value, str):
                raise SurveyError("%s must be a string" % name)
            if question.get("max") is not None and len(value) > question["max"]:
                raise SurveyError("%s is too long" % name)
        else:
            raise SurveyError("%s has the unknown survey type %s" % (name, kind))
        result[name] = value
    return result


def private_data_dir(path, job_template, answers, credentials, envvars=None):
    """Lays out an ansible-runner private data directory as AWX does for a launch of this job template.

    ``credentials`` is a list of (credential type name, inputs). Returns the keyword arguments of
    ``ansible_runner.run`` (the template's playbook, verbosity and the ``-e @file`` of each credential).
    """
    os.makedirs(path)
    shutil.copytree(os.path.join(AWX_EXAMPLES, "project"), os.path.join(path, "project"))
    os.makedirs(os.path.join(path, "inventory"))
    hosts = {host["name"]: host["variables"] for host in inventory()["hosts"]}
    with open(os.path.join(path, "inventory", "hosts.yml"), "w", encoding="utf-8") as out:
        # Host variables are templated as usual (AWX's inventory is no credential).
        yaml.safe_dump({"all": {"hosts": hosts}}, out)
    types = credential_types()
    environment = dict(envvars or {})
    cmdline = []
    for type_name, inputs in credentials:
        injected_env, extra_vars_file = inject(types[type_name], inputs, path)
        environment.update(injected_env)
        if extra_vars_file:
            cmdline += ["-e", "@%s" % extra_vars_file]
    extravars = survey_answers(job_template, answers)
    # AWX adds the job's own identity beside the survey answers.
    extravars.update({"awx_job_template_name": job_template["name"], "tower_job_template_name": job_template["name"]})
    with open(os.path.join(path, "env", "extravars"), "w", encoding="utf-8") as out:
        yaml.safe_dump(extravars, out)
    with open(os.path.join(path, "env", "envvars"), "w", encoding="utf-8") as out:
        yaml.safe_dump(environment, out)
    return {"private_data_dir": path, "playbook": job_template["playbook"],
            "verbosity": job_template.get("verbosity", 0), "cmdline": " ".join(cmdline)}
