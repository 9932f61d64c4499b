"""`make demo`: the low side builds and signs a bundle from a registry, verification proves it, tampering is caught.

Everything runs on loopback: a CNCF distribution registry with TLS and a password, images made with umoci
and pushed with skopeo, the bundle built and verified by the petra.core playbooks, and openssl as an
independent check of the signature. Output lands in demo-out/.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.petra.core.tests.support import images, pki, servers  # noqa: E402  (needs the path above)

OUT = os.path.join(ROOT, "demo-out")
BIN = os.path.dirname(sys.executable)
USER = ("demo", "demo-Passw0rd")
HIGH_USER = ("loader", "high-Side-Passw0rd")


def step(text):
    print("\n==> " + text, flush=True)


def playbook(name, *args, expect_failure=False):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    result = subprocess.run([os.path.join(BIN, "ansible-playbook"), name] + list(args), env=env, cwd=OUT,
                            capture_output=True, text=True, timeout=600, check=False)
    output = result.stdout + result.stderr
    if (result.returncode != 0) != expect_failure:
        print(output)
        outcome = "succeeded" if expect_failure else "failed"
        raise SystemExit("demo: %s %s unexpectedly (exit %d)" % (name, outcome, result.returncode))
    return output


def main():
    started = time.monotonic()
    shutil.rmtree(OUT, ignore_errors=True)
    for sub in ("tls", "registry", "keys", "src/manifests/apps", "outbox", "inbox"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)

    step("Starting a registry on loopback (docker-registry, TLS with a demo CA, htpasswd)")
    tls = pki.make_ca_and_server(os.path.join(OUT, "tls"))
    registry = servers.Registry(os.path.join(OUT, "registry"), tls=tls, users=dict([USER])).start()
    try:
        print("    registry at https://%s" % registry.host)

        step("Building images with umoci and pushing them with skopeo")
        layout = os.path.join(OUT, "registry", "layout")
        web = images.build_image(layout, "web", ["os", "web"], layer_size=512 * 1024)
        api = images.build_image(layout, "api", ["os", "api"], layer_size=512 * 1024)
        images.build_image(layout, "agent-amd64", ["agent-amd64"], arch="amd64")
        images.build_image(layout, "agent-arm64", ["agent-arm64"], arch="arm64")
        agent = images.add_multiarch_index(layout, "agent", {"linux/amd64": "agent-amd64",
                                                             "linux/arm64": "agent-arm64"})
        images.push(layout, "web", registry, "platform/web", "1.0", creds=USER)
        images.push(layout, "api", registry, "platform/api", "1.0", creds=USER)
        images.push(layout, "agent", registry, "platform/agent", "1.0", creds=USER, all_platforms=True)
        for name, digest in (("web", web), ("api", api), ("agent (index, 2 platforms)", agent)):
            print("    %-28s %s" % (name, digest))

        step("Generating a P-256 signing key")
        key = os.path.join(OUT, "keys", "bundle.pem")
        pub = pki.write_ec_key(key)
        print("    %s, %s" % (key, pub))

        step("Writing the bundle spec (images, manifests, a file)")
        with open(os.path.join(OUT, "src", "manifests", "apps", "namespace.yaml"), "w") as handle:
            handle.write("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n")
        with open(os.path.join(OUT, "src", "k3s-airgap-images.tar"), "wb") as handle:
            handle.write(os.urandom(1024 * 1024))
        spec_path = os.path.join(OUT, "bundle.yml")
        with open(spec_path, "w") as handle:
            handle.write(textwrap.dedent("""\
                apiVersion: petra.dev/v1alpha1
                kind: Bundle
                metadata:
                  name: demo-platform
                  version: 1.0.0
                  expires: 2099-12-31
                images:
                  - ref: {host}/platform/web:1.0
                  - ref: {host}/platform/api:1.0
                  - ref: {host}/platform/agent:1.0
                    platforms: [linux/amd64, linux/arm64]
                manifests:
                  - name: apps
                    path: src/manifests/apps
                files:
                  - name: k3s-images
                    path: src/k3s-airgap-images.tar
                """.format(host=registry.host)))
        bundle = os.path.join(OUT, "outbox", "demo-platform-1.0.0.tar.zst")
        with open(os.path.join(OUT, "vars.yml"), "w") as handle:
            handle.write(textwrap.dedent("""\
                bundle_build_spec: {spec}
                bundle_build_dest: {dest}
                bundle_build_signing_key: {key}
                bundle_build_public_key: {pub}
                bundle_build_ca_file: {ca}
                bundle_build_registry_username: {user}
                bundle_build_registry_password: {password}
                """.format(spec=spec_path, dest=bundle, key=key, pub=pub, ca=tls["ca.pem"], user=USER[0],
                           password=USER[1])))

        step("ansible-playbook petra.core.bundle_create -e @vars.yml")
        print(_recap(playbook("petra.core.bundle_create", "-e", "@vars.yml")))
        step("Running it again: nothing to do (idempotent)")
        print(_recap(playbook("petra.core.bundle_create", "-e", "@vars.yml")))

        inbox = os.path.join(OUT, "inbox", os.path.basename(bundle))
        carry_through_diode(bundle, inbox, key, pub)
        step("Verifying the received bundle on the high side")
        output = playbook("petra.core.bundle_verify", "-e", "bundle_verify_path=" + inbox,
                          "-e", "bundle_verify_public_key=" + pub)
        print("    " + _line(output, "verified with key"))
        review_sheet(inbox, pub)

        step("Independent check of the signature with openssl")
        der = os.path.join(OUT, "inbox", "signature.der")
        with open(inbox + ".sig", "rb") as handle, open(der, "wb") as out:
            out.write(base64.b64decode(handle.read()))
        check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", pub, "-signature", der, inbox],
                               capture_output=True, text=True, timeout=120, check=False)
        print("    openssl: " + (check.stdout.strip() or check.stderr.strip()))
        if check.returncode != 0:
            raise SystemExit("demo: openssl did not accept the signature")

        step("Tampering with a copy (one byte flipped in the middle) and verifying again")
        tampered = os.path.join(OUT, "inbox", "tampered.tar.zst")
        shutil.copy(inbox, tampered)
        shutil.copy(inbox + ".sig", tampered + ".sig")
        with open(tampered, "r+b") as handle:
            middle = os.path.getsize(tampered) // 2
            handle.seek(middle)
            byte = handle.read(1)
            handle.seek(middle)
            handle.write(bytes([byte[0] ^ 0x01]))
        refused_sheet = os.path.join(OUT, "review", "tampered.html")
        output = playbook("petra.core.bundle_verify", "-e", "bundle_verify_path=" + tampered,
                          "-e", "bundle_verify_public_key=" + pub, "-e", "bundle_verify_review_html=" + refused_sheet,
                          expect_failure=True)
        print("    refused: " + _message(output))
        print("    review sheet (says refused, and why): %s" % refused_sheet)

        step("Starting the high-side registry (a second docker-registry, its own password)")
        os.makedirs(os.path.join(OUT, "high-registry"), exist_ok=True)
        high = servers.Registry(os.path.join(OUT, "high-registry"), tls=tls, users=dict([HIGH_USER])).start()
        try:
            print("    high-side registry at https://%s" % high.host)
            with open(os.path.join(OUT, "load-vars.yml"), "w") as handle:
                handle.write(textwrap.dedent("""\
                    bundle_load_src: {src}
                    bundle_load_public_key: [{pub}]
                    bundle_load_registry: {host}/petra
                    bundle_load_ca_file: {ca}
                    bundle_load_registry_username: {user}
                    bundle_load_registry_password: {password}
                    bundle_load_registries_dest: {registries}
                    """.format(src=inbox, pub=pub, host=high.host, ca=tls["ca.pem"], user=HIGH_USER[0],
                               password=HIGH_USER[1], registries=os.path.join(OUT, "inbox", "registries.yaml"))))
            step("ansible-playbook petra.core.bundle_load -e @load-vars.yml")
            output = playbook("petra.core.bundle_load", "-e", "@load-vars.yml")
            print("    " + _line(output, "blobs pushed"))
            step("Loading again: nothing to push (idempotent)")
            print(_recap(playbook("petra.core.bundle_load", "-e", "@load-vars.yml")))

            step("Proving with skopeo that every image is on the high side with its original digest")
            source = registry.host.replace(":", "-")
            for repository, digest in (("platform/web", web), ("platform/api", api), ("platform/agent", agent)):
                loaded = images.skopeo_inspect_digest(high, "petra/%s/%s:1.0" % (source, repository), HIGH_USER)
                mark = "same digest" if loaded == digest else "DIFFERENT DIGEST"
                print("    %-44s %s  %s" % ("petra/%s/%s:1.0" % (source, repository), loaded, mark))
                if loaded != digest:
                    raise SystemExit("demo: %s arrived with a different digest" % repository)
            print("    k3s mirrors: %s" % os.path.join(OUT, "inbox", "registries.yaml"))
            deliver_an_update(registry, high, spec_path, bundle, inbox, pub)
        finally:
            high.stop()

        step("Summary")
        size = os.path.getsize(bundle)
        print("    bundle      %s (%.1f MiB)" % (bundle, size / 1048576.0))
        print("    signature   %s.sig (cosign sign-blob format)" % bundle)
        print("    contents    3 images (one multi-arch index), 1 manifest set, 1 file")
        print("    verified    yes, by petra.core.petra_verify and by openssl")
        print("    tampering   detected and refused")
        print("    review      %s (screenshot %s)" % (os.path.join(OUT, "review", "demo-platform-1.0.0.html"),
                                                      os.path.join(OUT, "review", "demo-platform-1.0.0.png")))
        print("    crossing    AWS Diode (emulated): parts, a parity part, signed index, receipt; one part lost on the")
        print("                way and rebuilt from the parity (byte-identical); the bundle rebuilt and verified")
        print("    high side   every image loaded with its original digest (checked with skopeo); a second load")
        print("                pushed nothing")
        print("    update      1.1.0 as a delta on 1.0.0 (only the changed layer travels), loaded after 1.0.0,")
        print("                web:1.1 arrived with its original digest")
        print("    took        %.1fs" % (time.monotonic() - started))

        assess_what_was_built(inbox, pub, tls)
    finally:
        registry.stop()


def deliver_an_update(registry, high, spec_path, base, inbox, pub):
    """Release 1.1.0 changes one layer of one image: a delta on 1.0.0 carries that layer and leaves the rest out."""
    step("An update: web 1.1 changes one layer; bundle 1.1.0 is built as a delta on 1.0.0")
    layout = os.path.join(OUT, "registry", "layout")
    web = images.build_image(layout, "web-1.1", ["os", "web-1.1"], layer_size=512 * 1024)
    images.push(layout, "web-1.1", registry, "platform/web", "1.1", creds=USER)
    print("    platform/web:1.1             %s (layer 'os' unchanged, one new layer)" % web)
    with open(spec_path) as handle:
        spec = handle.read().replace("version: 1.0.0", "version: 1.1.0")
    spec = spec.replace("/platform/web:1.0", "/platform/web:1.1")
    update_spec = os.path.join(OUT, "bundle-1.1.0.yml")
    with open(update_spec, "w") as handle:
        handle.write(spec)
    delta = os.path.join(OUT, "outbox", "demo-platform-1.1.0.tar.zst")
    with open(os.path.join(OUT, "vars.yml")) as handle:
        build_vars = handle.read().replace(spec_path, update_spec).replace(base, delta)
    with open(os.path.join(OUT, "vars-1.1.0.yml"), "w") as handle:
        handle.write(build_vars + "bundle_build_base: %s\nbundle_build_base_public_keys: [%s]\n" % (base, pub))
    step("ansible-playbook petra.core.bundle_create -e @vars-1.1.0.yml   (bundle_build_base: the 1.0.0 bundle)")
    print(_recap(playbook("petra.core.bundle_create", "-e", "@vars-1.1.0.yml")))
    for label, path in (("full 1.0.0", base), ("delta 1.1.0", delta)):
        print("    %-12s %8.1f KiB" % (label, os.path.getsize(path) / 1024.0))
    # The demo carries the delta across by hand; the Diode path is the same as for 1.0.0.
    received = os.path.join(os.path.dirname(inbox), os.path.basename(delta))
    shutil.copy(delta, received)
    shutil.copy(delta + ".sig", received + ".sig")
    step("Verifying the delta on its own on the high side")
    output = playbook("petra.core.bundle_verify", "-e", "bundle_verify_path=" + received,
                      "-e", "bundle_verify_public_key=" + pub)
    print("    " + _line(output, "verified with key"))
    print("    " + _line(output, "delta on demo-platform"))
    step("ansible-playbook petra.core.bundle_load of the delta: its left-out blobs are checked in the registry first")
    with open(os.path.join(OUT, "load-vars.yml")) as handle:
        load_vars = handle.read().replace(inbox, received)
    with open(os.path.join(OUT, "load-vars-1.1.0.yml"), "w") as handle:
        handle.write(load_vars)
    output = playbook("petra.core.bundle_load", "-e", "@load-vars-1.1.0.yml")
    print("    " + _line(output, "blobs pushed"))
    source = registry.host.replace(":", "-")
    loaded = images.skopeo_inspect_digest(high, "petra/%s/platform/web:1.1" % source, HIGH_USER)
    print("    petra/%s/platform/web:1.1  %s  %s" % (source, loaded, "same digest" if loaded == web else "DIFFERENT"))
    if loaded != web:
        raise SystemExit("demo: web:1.1 arrived with a different digest")


def review_sheet(bundle, pub):
    """The transfer review sheet of the received bundle (petra_verify review_html / review_json), and a screenshot of
    it taken by headless Chromium, which must render it with no console message."""
    from ansible_collections.petra.core.tests.support import browser

    step("Writing the transfer review sheet (petra_verify review_html, review_json) and a screenshot of it")
    directory = os.path.join(OUT, "review")
    html_path = os.path.join(directory, "demo-platform-1.0.0.html")
    json_path = os.path.join(directory, "demo-platform-1.0.0.json")
    output = playbook("petra.core.bundle_verify", "-e", "bundle_verify_path=" + bundle,
                      "-e", "bundle_verify_public_key=" + pub, "-e", "bundle_verify_review_html=" + html_path,
                      "-e", "bundle_verify_review_json=" + json_path)
    print("    petra_verify: " + _line(output, "changed: [localhost]"))
    if browser.executable() is None:
        raise SystemExit("demo: chromium is not installed, so the review sheet cannot be shown; run 'make setup'")
    screenshot = os.path.join(directory, "demo-platform-1.0.0.png")
    rendered = browser.render(html_path, screenshot=screenshot, height=2400)
    if rendered.console:
        raise SystemExit("demo: the review sheet logged browser console messages: %s" % rendered.console)
    with open(json_path) as handle:
        sheet = json.load(handle)
    print("    verdict     %s; %d images, %d SBOM components" % (
        sheet["verdict"]["status"], len(sheet["images"]), (sheet["sbom"] or {}).get("components", 0)))
    print("    sheet       %s (open it in any browser, offline)" % html_path)
    print("    data        %s" % json_path)
    print("    screenshot  %s (headless Chromium, no console messages)" % screenshot)
    petra_command(bundle, pub)


def petra_command(bundle, pub):
    """The operator's command on the same engine: what a high-side station without playbooks runs (docs/cli.md)."""
    step("petra bundle inspect %s --public-key %s" % (os.path.relpath(bundle, ROOT), os.path.relpath(pub, ROOT)))
    shown = subprocess.run([sys.executable, "-m", "ansible_collections.petra.core.plugins.module_utils.cli", "bundle",
                            "inspect", bundle, "--public-key", pub, "--quiet"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=COLLECTIONS), timeout=600, check=False)
    if shown.returncode != 0:
        raise SystemExit("demo: petra bundle inspect failed (%d): %s" % (shown.returncode, shown.stderr.strip()))
    for line in shown.stdout.strip().splitlines():
        print("    " + line)


# ---- compliance assessment (issue 18): the last step, on its own ------------------------------------------------
def assess_what_was_built(inbox, pub, tls):
    """Load the received bundle with a trust state into a fresh high-side registry, then assess it with
    petra.core.compliance_assess. The demo builds no cluster: AWS, node and cluster evidence is reported as not
    collected, and what the demo did not do (verify source signatures) is a finding, never a pass."""
    step("Compliance assessment (NIST SP 800-53, OSCAL): the custody of what was loaded")
    work = os.path.join(OUT, "compliance")
    for sub in ("trust", "registry"):
        os.makedirs(os.path.join(work, sub), exist_ok=True)
    high = servers.Registry(os.path.join(work, "registry"), tls=tls, users=dict([HIGH_USER])).start()
    try:
        trust_state = os.path.join(work, "trust", "trust-state.json")
        assessment_key = os.path.join(OUT, "keys", "assessment.pem")
        assessment_pub = pki.write_ec_key(assessment_key)
        # The load's settings again, with a trust state; the assessment's beside them (JSON is YAML for -e @file).
        connection = {"ca_file": tls["ca.pem"], "registry_username": HIGH_USER[0], "registry_password": HIGH_USER[1]}
        settings = {"bundle_load_src": inbox, "bundle_load_public_key": [pub], "bundle_load_registry": high.host + "/petra",
                    "bundle_load_trust_state": trust_state, "compliance_cluster_name": "demo",
                    "compliance_dest": os.path.join(work, "assessments"), "compliance_signing_key": assessment_key,
                    "compliance_sources": ["custody"], "compliance_trust_state": trust_state,
                    "compliance_registry": high.host + "/petra", "compliance_registry_ca_file": tls["ca.pem"]}
        for name, value in connection.items():
            settings["bundle_load_" + name] = value
            settings.setdefault("compliance_" + name, value)
        with open(os.path.join(OUT, "compliance-vars.yml"), "w") as handle:
            json.dump(settings, handle, indent=1)
        playbook("petra.core.bundle_load", "-e", "@compliance-vars.yml")
        print("    loaded %s into https://%s with the trust state %s" % (os.path.basename(inbox), high.host, trust_state))
        step("ansible-playbook petra.core.compliance_assess -e @compliance-vars.yml")
        print(_recap(playbook("petra.core.compliance_assess", "-e", "@compliance-vars.yml")))
        run = os.path.realpath(os.path.join(work, "assessments", "latest"))
        with open(os.path.join(run, "assessment-results.json")) as handle:
            findings = json.load(handle)["assessment-results"]["results"][0]["findings"]
        for finding in findings:
            if finding["target"]["target-id"].startswith(("sr-4", "si-7_obj.a")):
                status = finding["target"]["status"]
                print("    %-13s %-13s %-5s %s" % (finding["target"]["target-id"], status["state"], status["reason"],
                                                   finding.get("remarks", "")[:90]))
        satisfied = sum(1 for finding in findings if finding["target"]["status"]["state"] == "satisfied")
        print("    %d of %d objectives satisfied; the rest need a cluster (not collected here) or a person" % (
            satisfied, len(findings)))
        der = os.path.join(run, "assessment-results.der")
        with open(os.path.join(run, "assessment-results.json.sig"), "rb") as handle, open(der, "wb") as out:
            out.write(base64.b64decode(handle.read()))
        check = subprocess.run(["openssl", "dgst", "-sha256", "-verify", assessment_pub, "-signature", der,
                                os.path.join(run, "assessment-results.json")], capture_output=True, text=True,
                               timeout=120, check=False)
        os.unlink(der)
        print("    openssl on the signed results: " + (check.stdout.strip() or check.stderr.strip()))
        if check.returncode != 0:
            raise SystemExit("demo: openssl did not accept the assessment's signature")
        print("    report      %s" % os.path.join(run, "report.html"))
        results, evidence = os.path.join(run, "assessment-results.json"), os.path.join(run, "evidence")
        print("    results     %s (+ .sig), evidence in %s" % (results, evidence))
    finally:
        high.stop()


MAPPING = "0f5c3b2a-1d2e-4f60-8a9b-0c1d2e3f4a5b"


def carry_through_diode(bundle, inbox, key, pub):
    """Low-side bucket -> Petra's Diode emulator -> high-side bucket, with moto as S3 on loopback."""
    import boto3
    import threading
    from moto.server import ThreadedMotoServer
    from ansible_collections.petra.core.plugins.module_utils.diode.emulator import DiodeEmulator, Mapping, make_server

    step("Starting S3 (moto) and the AWS Diode emulator on loopback")
    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = servers.free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = "http://127.0.0.1:%d" % port
    os.environ.update(AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_DEFAULT_REGION="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    s3.create_bucket(Bucket="low-side")
    s3.create_bucket(Bucket="high-side")
    kms_key = boto3.client("kms", region_name="us-east-1", endpoint_url=endpoint).create_key()["KeyMetadata"]["KeyId"]
    emulator = make_server(DiodeEmulator(s3, [Mapping(MAPPING, "high-side", size_limit=100 * 1000 * 1000)], delay=0.5))
    threading.Thread(target=emulator.serve_forever, daemon=True).start()
    diode_url = "http://127.0.0.1:%d" % emulator.server_address[1]
    print("    S3 at %s (buckets low-side, high-side), Diode emulator at %s" % (endpoint, diode_url))
    try:
        os.makedirs(os.path.join(OUT, "staging", "low"), exist_ok=True)
        os.makedirs(os.path.join(OUT, "staging", "high"), exist_ok=True)
        with open(os.path.join(OUT, "transfer-vars.yml"), "w") as handle:
            handle.write(textwrap.dedent("""\
                bundle_transfer_src: {bundle}
                bundle_transfer_signing_key: {key}
                bundle_transfer_transport: diode
                bundle_transfer_directory: {staging}
                bundle_transfer_max_part_size: 1200KiB
                bundle_transfer_parity_parts: 1
                bundle_transfer_s3_bucket: low-side
                bundle_transfer_s3_prefix: demo-platform/1.0.0
                bundle_transfer_mapping_id: {mapping}
                bundle_transfer_kms_key_id: {kms}
                bundle_transfer_diode_endpoint_url: {diode}
                bundle_transfer_aws_region: us-east-1
                bundle_transfer_aws_endpoint_url: {s3}
                bundle_transfer_receipt: {receipt}
                """.format(bundle=bundle, key=key, staging=os.path.join(OUT, "staging", "low"), mapping=MAPPING,
                           kms=kms_key, diode=diode_url, s3=endpoint, receipt=os.path.join(OUT, "receipt.json"))))
        with open(os.path.join(OUT, "receive-vars.yml"), "w") as handle:
            handle.write(textwrap.dedent("""\
                bundle_receive_transport: diode
                bundle_receive_directory: {staging}
                bundle_receive_dest: {inbox}
                bundle_receive_public_key: [{pub}]
                bundle_receive_delivery_bucket: high-side
                bundle_receive_s3_prefix: demo-platform/1.0.0
                bundle_receive_mapping_id: {mapping}
                bundle_receive_aws_region: us-east-1
                bundle_receive_aws_endpoint_url: {s3}
                """.format(staging=os.path.join(OUT, "staging", "high"), inbox=inbox, pub=pub, mapping=MAPPING,
                           s3=endpoint)))
        step("ansible-playbook petra.core.bundle_transfer: 1200 KiB parts + 1 parity part + signed index "
             "-> low-side bucket -> Diode")
        print(_recap(playbook("petra.core.bundle_transfer", "-e", "@transfer-vars.yml")))
        with open(os.path.join(OUT, "receipt.json")) as handle:
            files = json.load(handle)["files"]
        print("    %d files crossed, all %s; receipt: %s" % (
            len(files), "/".join(sorted({f["status"] for f in files})), os.path.join(OUT, "receipt.json")))
        step("Sending again: nothing uploaded, no new transfer")
        print(_recap(playbook("petra.core.bundle_transfer", "-e", "@transfer-vars.yml")))
        lost = lose_a_part(s3)
        step("ansible-playbook petra.core.bundle_receive: high-side bucket -> parts proven -> lost part rebuilt "
             "from parity -> bundle rebuilt")
        output = playbook("petra.core.bundle_receive", "-v", "-e", "@receive-vars.yml")
        print(_recap(output, verbose=True))
        rebuilt = _result(output, "Prove the parts and rebuild the bundle").get("rebuilt")
        print("    rebuilt from parity: %s" % ", ".join(rebuilt or ["nothing"]))
        with open(os.path.join(OUT, "staging", "low", lost), "rb") as sent, \
                open(os.path.join(OUT, "staging", "high", lost), "rb") as made:
            same = sent.read() == made.read()
        print("    %s on the high side is %s the part sent" % (lost, "byte-identical to" if same else "NOT"))
        if rebuilt != [lost] or not same:
            raise SystemExit("demo: the lost part %s was not rebuilt (rebuilt: %s)" % (lost, rebuilt))
    finally:
        emulator.shutdown()
        moto.stop()


def lose_a_part(s3):
    """The link loses a file: one data part vanishes from the high-side bucket before anyone reads it."""
    prefix = "%s/demo-platform/1.0.0/" % MAPPING
    keys = sorted(item["Key"] for item in s3.list_objects_v2(Bucket="high-side", Prefix=prefix)["Contents"])
    key = [key for key in keys if ".part-0002-of-" in key][0]
    s3.delete_object(Bucket="high-side", Key=key)
    name = key[len(prefix):]
    step("The link loses a file on the way: %s is gone from the high-side bucket (%d files arrived of %d)" % (
        name, len(keys) - 1, len(keys)))
    return name


def _recap(output, verbose=False):
    lines = [line.split(" => ", 1)[0] if verbose else line for line in output.splitlines()]
    return "\n".join("    " + line for line in lines if line.startswith(("changed:", "ok:", "localhost ")))


def _result(output, task):
    """The result of a task, from ansible-playbook -v output (the JSON after '=>' on the task's result line)."""
    lines = output.splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("TASK [") and task in line)
    for line in lines[start:]:
        if line.startswith(("changed: [", "ok: [")) and " => " in line:
            return json.loads(line.split(" => ", 1)[1])
    return {}


def _message(output):
    """The failure message of the verify task, from ansible-playbook's output."""
    line = _line(output, '"msg": ')
    return line.split('"msg": "', 1)[-1].split('", "', 1)[0]


def _line(output, needle):
    """The first output line holding needle; a debug message without its JSON quoting."""
    for line in output.splitlines():
        if needle in line:
            line = line.strip()
            if line.startswith('"msg": "') and line.endswith('"'):
                line = line[len('"msg": "'):-1]
            return line
    return ""


if __name__ == "__main__":
    main()
