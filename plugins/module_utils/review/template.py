# -*- coding: utf-8 -*-
# Copyright: Petra contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
# This module_utils file is private to the petra.core collection: not a public API.
"""The review sheet's Jinja2 template, as a Python string so that it travels wherever the code does (an installed
collection, AnsiballZ, the ``petra`` command) with no data file to find.

Every value is escaped by the environment (autoescape); the template never marks anything safe. The page loads
nothing and runs nothing: its Content-Security-Policy allows no script, no connection and no outside resource,
so even a flaw in escaping could not run code or reach the network.
"""

from __future__ import annotations

TEMPLATE = r"""{% macro severities(findings) %}
{% for f in findings %}<span class="pill sev-{{ f.severity }}">{{ f.count }} {{ f.severity }}</span>
{% else %}<span class="pill ok">no findings</span>{% endfor %}
{% endmacro %}
{% macro licences(table, more) %}
{% for l in table %}{{ l.name }}{% if l.components > 1 %} ({{ l.components }}){% endif %}{{ ', ' if not loop.last }}{% endfor %}
{% if more %} and {{ more }} more{% endif %}
{% endmacro %}
{% macro sbom_cell(s) %}
{% if sheet.claimed %}
<span class="muted">not read (the bundle is not verified)</span>
{% elif s.bomRef %}
<span class="muted">bundle SBOM:</span> {{ s.components }} component(s){% if s.licences %}, {{ licences(s.licences, 0) }}{% endif %}
{% else %}
<span class="muted">not in the bundle SBOM</span>
{% endif %}
{% for c in s.carried %}
<br><span class="muted">carried SBOM</span> {{ c['format'] or 'unreadable' }} {{ c.specVersion or '' }}:
{{ c.components if c.components is not none else '?' }} component(s)
{%- if c.licences %}; licences: {{ licences(c.licences, c.licencesNotListed) }}{% elif c.components %}; no licences listed{% endif %}
{% endfor %}
{% endmacro %}
{% macro common_cells(item) %}
<td class="num">{{ item.size | size }}</td><td class="mono">{{ item.source or '-' }}</td><td>{{ sbom_cell(item.sbom) }}</td>
    <td class="mono">{{ item.countersignature.tag if item.countersignature else '-' }}</td>
{% endmacro %}
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="petra.core review sheet, format {{ sheet.formatVersion }}">
<title>{{ 'REFUSED' if refused else 'Verified' }}: {{ bundle.name or bundle.file }} {{ bundle.version or '' }} - Petra transfer review</title>
<style>
:root { --ok: #1b6e34; --bad: #a61b1b; --ink: #1d232a; --muted: #5b6470; --line: #d5dae0; --soft: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 0 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 15px; margin: 0 0 8px; }
.banner { padding: 18px 24px; color: #fff; }
.banner.verified { background: var(--ok); }
.banner.refused { background: var(--bad); }
.banner .word { font-size: 28px; font-weight: 700; letter-spacing: .04em; }
.banner .why { font-size: 15px; margin-top: 4px; max-width: 1100px; overflow-wrap: anywhere; }
.banner .hint { margin-top: 6px; opacity: .95; }
.warning { background: #fff4d6; border: 1px solid #e0b84a; padding: 10px 14px; margin: 16px 0; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
table.facts th { width: 210px; background: none; color: var(--muted); font-weight: 500; }
.mono, code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 12px 0; page-break-inside: avoid; }
.pill { display: inline-block; padding: 0 7px; border-radius: 9px; font-size: 12px; font-weight: 600; margin: 1px 2px 1px 0; background: var(--soft); }
.pill.ok { background: #dcefe1; color: var(--ok); }
.pill.bad { background: #f6dada; color: var(--bad); }
.sev-critical { background: #7a0d0d; color: #fff; } .sev-high { background: #c4361b; color: #fff; }
.sev-medium { background: #e6a117; color: #1d232a; } .sev-low { background: #d9e3ec; }
.sev-negligible, .sev-unknown { background: #eceff2; }
.bar-image { fill: #2f6db5; } .bar-chart { fill: #8a4fb8; } .bar-manifests { fill: #2b8a78; }
.bar-file { fill: #c0782a; } .bar-other { fill: #8b949e; }
svg text { font: 12px system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; fill: #1d232a; }
footer { color: var(--muted); font-size: 12px; margin-top: 36px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { .banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; } }
</style>
</head>
<body>
<header class="banner {{ 'refused' if refused else 'verified' }}" id="verdict" role="status">
  <div class="word">{{ 'REFUSED' if refused else 'VERIFIED' }}</div>
  {% if refused %}
  <div class="why">{{ verdict.message }}{% if verdict.reason %} <span class="mono">({{ verdict.reason }})</span>{% endif %}</div>
    {% if verdict.hint %}
  <div class="hint">What to do: {{ verdict.hint }}</div>
    {% endif %}
  {% else %}
  <div class="why">Signed by {{ signatures.signers | length }} of {{ signatures.threshold }} required key(s);
    every entry matches the signed metadata{% if bundle.expires %}; valid through {{ bundle.expires }}{% endif %}.</div>
  {% endif %}
</header>
<main>
<h1>{{ bundle.name or '(unknown bundle)' }} {{ bundle.version or '' }}</h1>
<div class="muted mono">{{ bundle.path }}</div>
{% if sheet.claimed %}
<div class="warning"><strong>Not verified.</strong>
  {% if bundle.name %}
  What follows is what the bundle claims about itself, read from its first entry without proof. Do not rely on it.
  {% else %}
  The bundle's metadata could not be read.
  {% endif %}
</div>
{% endif %}

<h2 id="bundle">Bundle</h2>
<table class="facts">
  <tr><th>Name and version</th><td>{{ bundle.name or '-' }} {{ bundle.version or '' }}</td></tr>
  <tr><th>File</th><td class="mono">{{ bundle.file }}</td></tr>
  <tr><th>SHA-256</th><td class="mono">{{ bundle.sha256 or 'not computed' }}</td></tr>
  <tr><th>Size</th><td>{{ bundle.size | size }}
    {%- if sizes %} compressed, {{ sizes.uncompressed | size }} of content in {{ bundle.entries }} entries{% endif %}</td></tr>
  <tr><th>Created</th><td>{{ bundle.created or '-' }}</td></tr>
  <tr><th>Expires</th><td>{{ bundle.expires or 'never' }}</td></tr>
  <tr><th>Signature file</th><td class="mono">{{ bundle.signature or '-' }}</td></tr>
  <tr><th>Contents</th><td>{{ images | length }} image(s), {{ charts | length }} chart(s),
    {{ manifests | length }} manifest set(s), {{ files | length }} file(s)</td></tr>
</table>

<h2 id="signatures">Signers</h2>
{% if signatures.threshold %}
<p><span class="pill {{ 'ok' if signatures.met else 'bad' }}">threshold {{ 'met' if signatures.met else 'not met' }}</span>
{{ signatures.signers | length }} distinct key(s) signed; {{ signatures.threshold }} required.</p>
{% endif %}
<table>
  <tr><th>Key</th><th>Status</th></tr>
  {% for key in signatures.signers %}
  <tr><td class="mono">{{ key }}</td>
    <td><span class="pill ok">signed</span> {{ 'primary signature' if key == signatures.primary else 'co-signature' }}
      {% if key in signatures.reproduced %}<span class="pill ok">reproduced</span> rebuilt from the spec and sources
      on the co-signer's host, byte-identical{% endif %}</td></tr>
  {% endfor %}
  {% for key in signatures.unsignedKeys %}
  <tr><td class="mono">{{ key }}</td><td><span class="pill">no signature</span></td></tr>
  {% endfor %}
  {% for item in signatures.rejected %}
  <tr><td class="mono">{{ item.keyId }}</td><td><span class="pill bad">not counted</span> {{ item.reason }}</td></tr>
  {% endfor %}
  {% if not signatures.signers and not signatures.unsignedKeys and not signatures.rejected %}
  <tr><td colspan="2" class="muted">
    {% if bundle.signer %}
    The bundle names signer key <span class="mono">{{ bundle.signer }}</span>; no signature was proven.
    {% else %}
    No signature was proven.
    {% endif %}
  </td></tr>
  {% endif %}
</table>

{% if trust %}
<h2 id="trust">Trust state</h2>
<table class="facts">
  <tr><th>Trust state</th><td class="mono">{{ trust.path }}</td></tr>
  {% if trust.head %}
  <tr><th>Head</th><td>{{ trust.head.entries }} entries, <span class="mono">{{ trust.head.hash }}</span></td></tr>
  {% endif %}
  {% if trust.decision %}
  <tr><th>A load would</th><td><strong>{{ trust.decision.action }}</strong>
    {% if trust.decision.current %}
    (current: {{ trust.decision.current.version }}, accepted {{ trust.decision.current.acceptedAt }})
    {% endif %}
  </td></tr>
  {% endif %}
  {% if trust.witness %}
  <tr><th>Trust witness</th><td><span class="mono">{{ trust.witness.reference }}</span>: {{ trust.witness.status }}</td></tr>
  {% endif %}
</table>
{% endif %}
{% if sheet.acceptance %}
<p>Accepted {{ sheet.acceptance.acceptedAt }} into <span class="mono">{{ sheet.acceptance.registry }}</span>
{%- if sheet.acceptance.trustEntry %}, trust state entry {{ sheet.acceptance.trustEntry.number }}{% endif %}.</p>
{% endif %}

{% if sizes %}
<h2 id="sizes">What takes the space</h2>
<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="size-title" width="{{ chart.width }}"
     height="{{ chart.height }}" viewBox="0 0 {{ chart.width }} {{ chart.height }}">
  <title id="size-title">Content size by item, {{ sizes.uncompressed | size }} in all</title>
  {% for bar in chart.bars %}
  <g>
    <title>{{ bar.label }}: {{ bar.bytes | size }}{% if bar.shared %} (and {{ bar.shared | size }} shared with items above){% endif %}</title>
    <text x="{{ chart.label_width - 8 }}" y="{{ bar.y + 14 }}" text-anchor="end">{{ bar.label | truncate(48, true, '…', 0) }}</text>
    <rect class="bar-{{ bar.kind }}" x="{{ chart.label_width }}" y="{{ bar.y + 2 }}" width="{{ bar.width }}" height="16" rx="2"></rect>
    <text x="{{ chart.label_width + bar.width + 6 }}" y="{{ bar.y + 14 }}">{{ bar.bytes | size }} ({{ bar.percent }}%)</text>
  </g>
  {% endfor %}
</svg>
<p class="muted">Uncompressed content. A blob shared by several items is counted once, under the first of them in the
bundle (images, then charts, manifest sets and files); the bundle file is {{ sizes.compressed | size }} after compression.</p>
{% endif %}

<h2 id="images">Images ({{ images | length }})</h2>
{% for image in images %}
<div class="card">
  <h3 class="mono">{{ image.ref }}</h3>
  <table class="facts">
    <tr><th>Digest</th><td class="mono">{{ image.digest }}</td></tr>
    <tr><th>Platforms</th><td>
      {% for p in image.platforms %}
      <span class="pill">{{ p.platform or 'unknown' }}</span>
        {% if image.platforms | length > 1 %}
      <span class="mono muted">{{ p.digest }}</span><br>
        {% endif %}
      {% endfor %}
    </td></tr>
    <tr><th>Size</th><td>{{ image.size | size }}</td></tr>
    <tr><th>Source signature</th><td>
      {% set s = image.sourceSignature %}
      {% if s %}
      <span class="pill ok">verified</span> {{ s.method }}{% if s.identity %}: <span class="mono">{{ s.identity }}</span>{% endif %}
        {% if s.issuer %}
      (issuer <span class="mono">{{ s.issuer }}</span>)
        {% endif %}
        {% if s.keyId %}
      key <span class="mono">{{ s.keyId }}</span>
        {% endif %}
      <br><span class="muted">rule <span class="mono">{{ s.rule }}</span>{% if s['format'] %}, {{ s['format'] }}{% endif %},
        at {{ s.verifiedAt }}</span>
        {% if s.dockerReference %}
      <br>made for <span class="mono">{{ s.dockerReference }}</span> (match: {{ s.dockerReferenceMatch or '-' }})
        {% endif %}
      {% else %}
      <span class="pill">not recorded</span> <span class="muted">the bundle was built without source verification</span>
      {% endif %}
    </td></tr>
    <tr><th>Countersignature</th><td>
      {% if image.countersignature %}<span class="mono">{{ image.countersignature.tag }}</span>{% else %}<span class="muted">none</span>{% endif %}
    </td></tr>
    <tr><th>Carried with it</th><td>
      {% for a in image.attached %}
      <span class="pill">{{ a.kind }}</span> <span class="mono">{{ a.tag or a.digest }}</span> <span class="muted">{{ a.type }}</span><br>
      {% else %}
      <span class="muted">nothing</span>
      {% endfor %}
    </td></tr>
    <tr><th>SBOM</th><td>{{ sbom_cell(image.sbom) }}</td></tr>
    <tr><th>Vulnerability scan</th><td>
      {% for r in image.scan %}
        {% if image.scan | length > 1 %}
      <span class="muted">{{ r.platform or r.manifest }}:</span>
        {% endif %}
      {{ severities(r.findings) }}{% if r.ignored %} <span class="muted">{{ r.ignored }} ignored</span>{% endif %}<br>
      {% else %}
      <span class="muted">{{ 'no scan report in the bundle' if scan else 'the bundle was built without a scan' }}</span>
      {% endfor %}
    </td></tr>
    <tr><th>Custody</th><td>
      {% if image.custody %}
        {% if image.custody.target %}
      loaded as <span class="mono">{{ image.custody.target }}</span>;
        {% else %}
      <span class="muted">not loaded (verification only);</span>
        {% endif %}
      carried in bundle <span class="mono">{{ image.custody.bundleSha256 }}</span>
      signed by {{ image.custody.signers | length }} key(s)
      {% else %}
      <span class="muted">no record</span>
      {% endif %}
    </td></tr>
  </table>
</div>
{% else %}
<p class="muted">No images.</p>
{% endfor %}

<h2 id="charts">Charts ({{ charts | length }})</h2>
{% if charts %}
<table>
  <tr><th>Chart</th><th>Version</th><th>Digest</th><th class="num">Size</th><th>Source</th><th>SBOM</th><th>Countersignature</th></tr>
  {% for c in charts %}
  <tr><td>{{ c.name }}</td><td>{{ c.version }}</td><td class="mono">{{ c.digest }}</td>
    {{ common_cells(c) }}</tr>
  {% endfor %}
</table>
{% else %}
<p class="muted">No charts.</p>
{% endif %}

<h2 id="manifests">Manifest sets ({{ manifests | length }})</h2>
{% if manifests %}
<table>
  <tr><th>Name</th><th class="num">Files</th><th>Digest</th><th class="num">Size</th><th>Source</th><th>SBOM</th><th>Countersignature</th></tr>
  {% for m in manifests %}
  <tr><td>{{ m.name }}</td><td class="num">{{ m.fileCount }}</td><td class="mono">{{ m.digest }}</td>
    {{ common_cells(m) }}</tr>
  {% endfor %}
</table>
{% else %}
<p class="muted">No manifest sets.</p>
{% endif %}

<h2 id="files">Files ({{ files | length }})</h2>
{% if files %}
<table>
  <tr><th>Name</th><th>File</th><th>SHA-256</th><th class="num">Size</th><th>Source</th><th>SBOM</th><th>Countersignature</th></tr>
  {% for f in files %}
  <tr><td>{{ f.name }}</td><td class="mono">{{ f.filename }}</td><td class="mono">{{ f.digest }}</td>
    {{ common_cells(f) }}</tr>
  {% endfor %}
</table>
{% else %}
<p class="muted">No files.</p>
{% endif %}

<h2 id="sbom">Software bill of materials and scan</h2>
<table class="facts">
  <tr><th>Bundle SBOM</th><td>
    {% if sbom %}
    {{ sbom['format'] }} {{ sbom.specVersion }}, <span class="mono">{{ sbom.entry }}</span>, {{ sbom.components }} component(s)
      {%- if sbom.licences %}; licences: {{ licences(sbom.licences, sbom.licencesNotListed) }}{% endif %}
    <br><span class="mono muted">{{ sbom.digest }}</span>
    {% else %}
    <span class="muted">none in this bundle</span>
    {% endif %}
  </td></tr>
  <tr><th>Vulnerability scan</th><td>
    {% if scan %}
    {{ scan.scanner }}, {{ scan.reports }} report(s), gate at {{ scan.failOn }}: {{ severities(scan.findings) }}
      {% if scan.ignoreFile %}
    <br><span class="muted">ignore file <span class="mono">{{ scan.ignoreFile }}</span></span>
      {% endif %}
    {% else %}
    <span class="muted">the bundle was built without a scan</span>
    {% endif %}
  </td></tr>
  {% if sheet.unreadDocuments %}
  <tr><th>Not summarised</th>
    <td>{{ sheet.unreadDocuments }} JSON entr{{ 'y' if sheet.unreadDocuments == 1 else 'ies' }} larger than the sheet reads</td></tr>
  {% endif %}
</table>

<footer>Petra transfer review sheet (format {{ sheet.formatVersion }}), made from the review data of this verification; the page
loads nothing and runs no script.
{% if not refused %}
Verified means: the signatures above prove the file, every entry matches the signed metadata, and the bundle has not
expired. It does not judge the content: that is the reviewer's decision.
{% endif %}
</footer>
</main>
</body>
</html>
"""
