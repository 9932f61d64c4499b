"""The vulnerability gate's parsing and verdicts, on hand-written reports in trivy's and grype's documented JSON."""

import datetime
import os

import pytest

from ansible_collections.petra.core.plugins.module_utils.custody.errors import ScanError
from ansible_collections.petra.core.plugins.module_utils.custody.scan import (
    Scanner,
    evaluate,
    gate_message,
    load_ignore_file,
    parse_grype,
    parse_trivy,
)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "scan")
TODAY = datetime.date(2026, 6, 1)


def report(name):
    with open(os.path.join(DATA, name), "rb") as handle:
        return handle.read()


def test_trivy_report():
    findings = parse_trivy(report("trivy.json"))
    assert [(f.id, f.package, f.severity) for f in findings] == [
        ("CVE-2024-5535", "libssl3", "critical"), ("CVE-2023-45853", "zlib1g", "high"), ("CVE-2011-3374", "apt", "low"),
        ("GHSA-xr7q-jx4m-x55m", "google.golang.org/grpc", "medium"), ("CVE-2025-0001", "example.com/mystery", "unknown")]
    assert findings[0].fixed == "3.0.14-1~deb12u1" and findings[0].aliases == ("DSA-5768-1",)
    assert findings[1].fixed is None


def test_grype_report_with_aliases():
    findings = parse_grype(report("grype.json"))
    assert [(f.id, f.severity, f.aliases) for f in findings] == [
        ("GHSA-xr7q-jx4m-x55m", "high", ("CVE-2023-44487",)), ("CVE-2023-45853", "negligible", ()),
        ("CVE-2024-5535", "critical", ("CVE-2024-5535",))]
    assert findings[0].package == "google.golang.org/grpc" and findings[0].fixed == "1.58.3"


@pytest.mark.parametrize("fail_on, blocking", [
    ("critical", ["CVE-2024-5535"]),
    ("high", ["CVE-2024-5535", "CVE-2023-45853"]),
    ("medium", ["CVE-2024-5535", "CVE-2023-45853", "GHSA-xr7q-jx4m-x55m"]),
    ("low", ["CVE-2024-5535", "CVE-2023-45853", "CVE-2011-3374", "GHSA-xr7q-jx4m-x55m"]),
])
def test_threshold(fail_on, blocking):
    counts, found, ignored = evaluate(parse_trivy(report("trivy.json")), [], fail_on, TODAY)
    assert [f.id for f in found] == blocking and ignored == 0
    assert counts == {"critical": 1, "high": 1, "medium": 1, "low": 1, "unknown": 1}


def test_yaml_ignore_file_with_package_alias_and_expiry(tmp_path):
    path = tmp_path / "ignore.yml"
    path.write_text("ignore:\n"
                    "  - vulnerability: CVE-2023-44487   # grype lists it as a related id of the GHSA\n"
                    "    reason: HTTP/2 not exposed\n"
                    "  - vulnerability: CVE-2024-5535\n    package: {name: libssl1.1}\n"
                    "  - vulnerability: CVE-2023-45853\n    until: 2026-05-01\n")
    rules, digest = load_ignore_file(str(path))
    assert digest.startswith("sha256:") and len(rules) == 3
    _counts, found, ignored = evaluate(parse_grype(report("grype.json")), rules, "negligible", TODAY)
    # The alias is ignored; the package-scoped rule names another package; the expired rule no longer applies.
    assert [f.id for f in found] == ["CVE-2023-45853", "CVE-2024-5535"] and ignored == 1


def test_trivyignore_text(tmp_path):
    path = tmp_path / ".trivyignore"
    path.write_text("# accepted\nCVE-2024-5535 exp:2026-12-31\nCVE-2023-45853\n")
    rules, _digest = load_ignore_file(str(path))
    _counts, found, ignored = evaluate(parse_trivy(report("trivy.json")), rules, "high", TODAY)
    assert found == [] and ignored == 2


def test_gate_message_names_image_and_findings():
    _counts, found, _ignored = evaluate(parse_trivy(report("trivy.json")), [], "high", TODAY)
    text = gate_message([("registry.example/app:1.0 (linux/amd64)", found)], "high")
    assert "registry.example/app:1.0 (linux/amd64): 2 finding(s) at or above high" in text
    assert "CRITICAL CVE-2024-5535 in libssl3 3.0.11-1~deb12u2 (fixed in 3.0.14-1~deb12u1)" in text


@pytest.mark.parametrize("parser, data, words", [
    (parse_trivy, b'{"SchemaVersion": 1, "Results": []}', "SchemaVersion is 1"),
    (parse_trivy, b"not json", "not JSON"),
    (parse_trivy, b'{"SchemaVersion": 2, "Results": [{"Vulnerabilities": [{"Severity": "HIGH"}]}]}', "lacks"),
    (parse_grype, b'{"source": {}}', "no 'matches' list"),
])
def test_malformed_reports(parser, data, words):
    with pytest.raises(ScanError) as info:
        parser(data)
    assert info.value.reason == "report" and words in str(info.value)


def test_missing_scanner_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ScanError) as info:
        Scanner({"scanner": "trivy"}).resolve()
    assert info.value.reason == "scanner-missing" and "trivy" in str(info.value) and "not installed" in str(info.value)
    with pytest.raises(ScanError):
        Scanner({"scanner": "grype", "executable": str(tmp_path / "no-such-grype")}).resolve()


def test_bad_settings():
    with pytest.raises(ScanError, match="not one of trivy, grype"):
        Scanner({"scanner": "clair"})
    with pytest.raises(ScanError, match="scan.fail_on 'severe'"):
        Scanner({"scanner": "trivy", "fail_on": "severe"})


def test_scanner_environment_is_never_logged():
    """scan.env may hold registry or database credentials: Ansible's own argument validation masks its values."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    from ansible_collections.petra.core.plugins.module_utils.options.custody import CUSTODY_ARGUMENT_SPEC
    result = ArgumentSpecValidator(CUSTODY_ARGUMENT_SPEC).validate(
        {"scan": {"scanner": "trivy", "env": {"TRIVY_PASSWORD": "s3cret-token", "TRIVY_CACHE_DIR": "/var/lib/trivy"}}})
    assert result.error_messages == []
    assert {"s3cret-token", "/var/lib/trivy"} <= result._no_log_values
