"""Test images built with umoci (random layers), pushed with skopeo: no Docker engine needed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import tarfile

TIMEOUT = 300


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)


def _layer_tar(path, seed, size):
    rng = random.Random(seed)
    data = rng.randbytes(size)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo("data/blob-%s.bin" % seed)
        info.size = len(data)
        info.mtime = 0
        archive.addfile(info, io.BytesIO(data))


def build_image(layout, tag, seeds, layer_size=64 * 1024, arch="amd64", workdir=None, created=None):
    """An image in the OCI layout with one random layer per seed; returns its manifest digest. ``created`` (RFC 3339)
    is the config's creation time, else umoci's (now)."""
    if not os.path.exists(os.path.join(layout, "oci-layout")):
        run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", "%s:%s" % (layout, tag)])
    workdir = workdir or os.path.dirname(layout)
    for seed in seeds:
        layer = os.path.join(workdir, "layer-%s.tar" % seed)
        _layer_tar(layer, seed, layer_size)
        run(["umoci", "raw", "add-layer", "--image", "%s:%s" % (layout, tag), layer])
        os.unlink(layer)
    run(["umoci", "config", "--image", "%s:%s" % (layout, tag), "--architecture", arch, "--os", "linux",
         "--config.cmd", "/bin/true"] + (["--created", created] if created else []))
    return manifest_digest(layout, tag)


def build_image_with_files(layout, tag, files, workdir, created="2026-01-01T00:00:00Z"):
    """An image in the OCI layout with one layer holding ``files`` ({path inside the image: bytes}, directories made
    as needed), fixed times and owners; returns its manifest digest."""
    if not os.path.exists(os.path.join(layout, "oci-layout")):
        run(["umoci", "init", "--layout", layout])
    run(["umoci", "new", "--image", "%s:%s" % (layout, tag)])
    layer = os.path.join(workdir, "layer-%s.tar" % tag)
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as archive:
        directories = sorted({"/".join(path.split("/")[:end]) for path in files
                              for end in range(1, path.count("/") + 1)})
        for directory in directories:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            archive.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))
    run(["umoci", "raw", "add-layer", "--image", "%s:%s" % (layout, tag), layer])
    os.unlink(layer)
    run(["umoci", "config", "--image", "%s:%s" % (layout, tag), "--architecture", "amd64", "--os", "linux",
         "--created", created])
    return manifest_digest(layout, tag)


def _index(layout):
    with open(os.path.join(layout, "index.json")) as handle:
        return json.load(handle)


def manifest_digest(layout, tag):
    for item in _index(layout)["manifests"]:
        if (item.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
            return item["digest"]
    raise KeyError(tag)


def add_multiarch_index(layout, tag, platform_tags):
    """An OCI image index over already-built tags: {"linux/amd64": "tag-amd64", ...}."""
    index = _index(layout)
    by_tag = {(m.get("annotations") or {}).get("org.opencontainers.image.ref.name"): m for m in index["manifests"]}
    manifests = []
    for platform, child_tag in platform_tags.items():
        os_name, arch = platform.split("/")[:2]
        child = by_tag[child_tag]
        manifests.append({"mediaType": child["mediaType"], "digest": child["digest"], "size": child["size"],
                          "platform": {"os": os_name, "architecture": arch}})
    data = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}, indent=2).encode()
    digest = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as handle:
        handle.write(data)
    index["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + digest,
                               "size": len(data), "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(os.path.join(layout, "index.json"), "w") as handle:
        json.dump(index, handle)
    return "sha256:" + digest


def skopeo_tls_args(registry, creds=None, prefix="dest"):
    args = []
    if registry.tls:
        certs = os.path.join(registry.workdir, "skopeo-certs")
        os.makedirs(certs, exist_ok=True)
        ca_copy = os.path.join(certs, "ca.crt")
        if not os.path.exists(ca_copy):
            with open(registry.tls["ca.pem"], "rb") as src, open(ca_copy, "wb") as dst:
                dst.write(src.read())
        args += ["--%s-cert-dir" % prefix, certs]
    else:
        args += ["--%s-tls-verify=false" % prefix]
    if creds:
        args += ["--%s-creds" % prefix, "%s:%s" % creds]
    return args


def push(layout, tag, registry, repository, dest_tag, creds=None, all_platforms=False):
    args = ["skopeo", "copy", "--preserve-digests"]
    if all_platforms:
        args.append("--all")
    args += skopeo_tls_args(registry, creds)
    args += ["oci:%s:%s" % (layout, tag), "docker://%s/%s:%s" % (registry.host, repository, dest_tag)]
    run(args)


def skopeo_inspect_digest(registry, reference, creds=None):
    args = ["skopeo", "inspect", "--raw"] + [a.replace("--dest-", "--") for a in skopeo_tls_args(registry, creds)]
    raw = subprocess.run(args + ["docker://%s/%s" % (registry.host, reference)], check=True, capture_output=True,
                         timeout=TIMEOUT).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()
