# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The vulnerability gate: trivy or grype over each image's OCI layout, their JSON reports, and the verdict.

Images are staged once, blob by blob (digest-checked, on disk beside the bundle), as one OCI layout per
platform manifest; the scanner reads that layout offline (its database options are passed through), and the
bundle writer then takes the layers from the same files, so what was scanned is what is carried.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - reported at run time
    HAS_YAML = False

from ansible_collections.petra.core.plugins.module_utils.custody.errors import ScanError
from ansible_collections.petra.core.plugins.module_utils.oci import mediatypes

SCANNERS = ("trivy", "grype")
SEVERITIES = ("unknown", "negligible", "low", "medium", "high", "critical")
THRESHOLDS = ("critical", "high", "medium", "low", "negligible")
REPORT_PREFIX = "reports/"
MAX_REPORT = 256 << 20
MAX_LISTED = 20


class Finding:
    """One vulnerability in one package."""

    __slots__ = ("id", "aliases", "package", "version", "fixed", "severity")

    def __init__(self, vulnerability_id, package, version, severity, fixed=None, aliases=()):
        self.id = vulnerability_id
        self.aliases = tuple(aliases)
        self.package = package
        self.version = version
        self.fixed = fixed
        text = (severity or "unknown").lower()
        self.severity = text if text in SEVERITIES else "unknown"

    def rank(self):
        return SEVERITIES.index(self.severity)

    def describe(self):
        text = "%s %s in %s %s" % (self.severity.upper(), self.id, self.package, self.version)
        return text + (" (fixed in %s)" % self.fixed if self.fixed else "")


def _report_error(scanner, problem):
    return ScanError("the %s report is not in %s's JSON format: %s" % (scanner, scanner, problem),
                     hint="Run a scanner release that writes the documented JSON report (trivy --format json, "
                          "grype -o json)", reason="report")


def parse_trivy(data):
    """Findings of a trivy JSON report (SchemaVersion 2: Results[].Vulnerabilities[])."""
    try:
        report = json.loads(data)
    except ValueError as exc:
        raise _report_error("trivy", "not JSON (%s)" % exc)
    if not isinstance(report, dict) or report.get("SchemaVersion") != 2:
        raise _report_error("trivy", "SchemaVersion is %r, not 2" % (
            report.get("SchemaVersion") if isinstance(report, dict) else None))
    findings = []
    try:
        for result in report.get("Results") or []:
            for item in result.get("Vulnerabilities") or []:
                findings.append(Finding(item["VulnerabilityID"], item["PkgName"], item.get("InstalledVersion", ""),
                                        item.get("Severity"), item.get("FixedVersion") or None,
                                        aliases=item.get("VendorIDs") or ()))
    except (KeyError, TypeError, AttributeError) as exc:
        raise _report_error("trivy", "a vulnerability lacks %s" % exc)
    return findings


def parse_grype(data):
    """Findings of a grype JSON report (matches[].vulnerability / artifact / relatedVulnerabilities)."""
    try:
        report = json.loads(data)
    except ValueError as exc:
        raise _report_error("grype", "not JSON (%s)" % exc)
    if not isinstance(report, dict) or not isinstance(report.get("matches"), list):
        raise _report_error("grype", "it has no 'matches' list")
    findings = []
    try:
        for match in report["matches"]:
            vulnerability = match["vulnerability"]
            artifact = match["artifact"]
            fixed = ", ".join((vulnerability.get("fix") or {}).get("versions") or []) or None
            aliases = [item["id"] for item in match.get("relatedVulnerabilities") or [] if item.get("id")]
            findings.append(Finding(vulnerability["id"], artifact["name"], artifact.get("version", ""),
                                    vulnerability.get("severity"), fixed, aliases=aliases))
    except (KeyError, TypeError, AttributeError) as exc:
        raise _report_error("grype", "a match lacks %s" % exc)
    return findings


PARSERS = {"trivy": parse_trivy, "grype": parse_grype}


class IgnoreRule:
    __slots__ = ("id", "package", "until", "reason")

    def __init__(self, vulnerability_id, package=None, until=None, reason=None):
        self.id = vulnerability_id
        self.package = package
        self.until = until
        self.reason = reason

    def covers(self, finding, today):
        if self.until is not None and today > self.until:
            return False
        if self.package and self.package != finding.package:
            return False
        return self.id == finding.id or self.id in finding.aliases


def _date(value, path, where):
    if value is None or isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ScanError("%s, %s: %r is not a date YYYY-MM-DD" % (path, where, value), reason="ignore-file")


def load_ignore_file(path):
    """Ignore rules from a YAML file (``ignore: [{vulnerability|id, package, until, reason}]`` or a list of IDs)
    or a ``.trivyignore``-style text file (one ID a line, ``exp:YYYY-MM-DD`` optional, ``#`` comments)."""
    if not path:
        return [], None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(1 << 20)
    except OSError as exc:
        raise ScanError("cannot read the scan ignore file %s: %s" % (path, exc.strerror), reason="ignore-file")
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8", "replace")
    document = None
    if HAS_YAML:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError:
            document = None
    if isinstance(document, dict):
        document = document.get("ignore")
        if not isinstance(document, list):
            raise ScanError("the scan ignore file %s has no 'ignore' list" % path, reason="ignore-file")
    rules = []
    if isinstance(document, list):
        for index, item in enumerate(document):
            where = "entry %d" % (index + 1)
            if isinstance(item, str):
                rules.append(IgnoreRule(item))
                continue
            if not isinstance(item, dict) or not (item.get("vulnerability") or item.get("id")):
                raise ScanError("%s, %s: give 'vulnerability' (or 'id')" % (path, where), reason="ignore-file")
            package = item.get("package")
            if isinstance(package, dict):
                package = package.get("name")
            rules.append(IgnoreRule(str(item.get("vulnerability") or item.get("id")), package,
                                    _date(item.get("until"), path, where), item.get("reason")))
        return rules, digest
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        until = None
        for extra in parts[1:]:
            if extra.startswith("exp:"):
                until = _date(extra[4:], path, "line %d" % number)
        rules.append(IgnoreRule(parts[0], until=until))
    return rules, digest


def evaluate(findings, ignore_rules, fail_on, today=None):
    """(severity counts, blocking findings, ignored count) for one report."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    threshold = SEVERITIES.index(fail_on)
    counts = dict.fromkeys(SEVERITIES, 0)
    blocking = []
    ignored = 0
    for finding in findings:
        if any(rule.covers(finding, today) for rule in ignore_rules):
            ignored += 1
            continue
        counts[finding.severity] += 1
        if finding.rank() >= threshold:
            blocking.append(finding)
    return {name: count for name, count in counts.items() if count}, blocking, ignored


class Scanner:
    """Runs one scanner executable on an OCI layout and reads its report."""

    def __init__(self, settings):
        self.name = settings.get("scanner")
        if self.name not in SCANNERS:
            raise ScanError("scan.scanner %r is not one of %s" % (self.name, ", ".join(SCANNERS)), reason="scanner")
        self.fail_on = (settings.get("fail_on") or "high").lower()
        if self.fail_on not in THRESHOLDS:
            raise ScanError("scan.fail_on %r is not one of %s" % (self.fail_on, ", ".join(THRESHOLDS)),
                            reason="scanner")
        self.executable = settings.get("executable") or self.name
        self.args = [str(arg) for arg in settings.get("args") or []]
        self.env = {str(key): str(value) for key, value in (settings.get("env") or {}).items()}
        self.timeout = int(settings.get("timeout") or 1800)
        self.ignore_rules, self.ignore_digest = load_ignore_file(settings.get("ignore_file"))

    def resolve(self):
        """The scanner's path; a missing scanner is an error, never a skipped scan."""
        path = shutil.which(self.executable)
        if path is None:
            raise ScanError("the vulnerability scanner %s (%s) is not installed on the controller, so the images "
                            "cannot be scanned" % (self.name, self.executable),
                            hint="Install %s on the controller (or give its path in scan.executable) with its "
                                 "database available offline; remove 'scan' only if no scan is wanted" % self.name,
                            reason="scanner-missing")
        return path

    def command(self, executable, layout, report):
        if self.name == "trivy":
            return [executable, "image", "--input", layout, "--format", "json", "--output", report,
                    "--quiet"] + self.args
        return [executable, "oci-dir:" + layout, "--output", "json", "--file", report, "--quiet"] + self.args

    def scan(self, executable, layout, report):
        """Run on a layout; returns the report bytes as the scanner wrote them."""
        environment = dict(os.environ)
        environment.update(self.env)
        try:
            finished = subprocess.run(self.command(executable, layout, report), capture_output=True, text=True,
                                      timeout=self.timeout, env=environment, check=False)
        except subprocess.TimeoutExpired:
            raise ScanError("%s did not finish within %d seconds" % (self.name, self.timeout),
                            hint="Raise scan.timeout, or check that its database is available offline", reason="scanner")
        except OSError as exc:
            raise ScanError("cannot run %s (%s): %s" % (self.name, executable, exc.strerror), reason="scanner")
        if finished.returncode != 0:
            tail = (finished.stderr or finished.stdout or "").strip().splitlines()[-5:]
            raise ScanError("%s failed with exit code %d: %s" % (self.name, finished.returncode, " | ".join(tail)),
                            hint="Offline, pass the database options in scan.args (trivy: --skip-db-update "
                                 "--offline-scan --cache-dir DIR; grype: GRYPE_DB_AUTO_UPDATE=false in scan.env)",
                            reason="scanner")
        try:
            size = os.path.getsize(report)
            if size > MAX_REPORT:
                raise ScanError("the %s report is %d bytes, more than %d" % (self.name, size, MAX_REPORT),
                                reason="report")
            with open(report, "rb") as handle:
                return handle.read()
        except OSError:
            raise ScanError("%s exited 0 but wrote no report at %s" % (self.name, report), reason="report")

    def parse(self, data):
        return PARSERS[self.name](data)


def stage_layout(directory, manifest_digest, manifest_data, blob_paths):
    """An OCI layout holding one manifest; blobs are links to the staged files (``blob_paths``: digest -> path)."""
    blobs = os.path.join(directory, "blobs", "sha256")
    os.makedirs(blobs)
    for digest, path in sorted(blob_paths.items()):
        os.link(path, os.path.join(blobs, digest.split(":", 1)[1]))
    with open(os.path.join(blobs, manifest_digest.split(":", 1)[1]), "wb") as handle:
        handle.write(manifest_data)
    with open(os.path.join(directory, "oci-layout"), "w") as handle:
        handle.write('{"imageLayoutVersion":"1.0.0"}')
    media_type = json.loads(manifest_data).get("mediaType") or mediatypes.OCI_MANIFEST
    with open(os.path.join(directory, "index.json"), "w") as handle:
        json.dump({"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": [
            mediatypes.descriptor(media_type, manifest_digest, len(manifest_data),
                                  {mediatypes.ANNOTATION_REF_NAME: "scan"})]}, handle)
    return directory


def report_entry_name(scanner, manifest_digest):
    return "%s%s/%s.json" % (REPORT_PREFIX, scanner, manifest_digest.split(":", 1)[1])


def gate_message(blocked, fail_on):
    """The build-stopping message: each image with its blocking findings (a few named)."""
    parts = []
    for label, findings in blocked:
        listed = ", ".join(finding.describe() for finding in findings[:MAX_LISTED])
        more = " and %d more" % (len(findings) - MAX_LISTED) if len(findings) > MAX_LISTED else ""
        parts.append("%s: %d finding(s) at or above %s: %s%s" % (label, len(findings), fail_on, listed, more))
    return "the vulnerability gate refuses %d image(s): %s" % (len(blocked), "; ".join(parts))
