"""`make bench`: bundle create and verify throughput and peak memory, against the baseline tools in the same run.

For each size (MiB, default 1024 and 4096; BENCH_SIZES overrides) it builds an image of random, incompressible
layers (like real gzip layers) with umoci, pushes it to a loopback registry, then measures:

  create   petra.core bundle creation from the registry   vs  tar -cf - <the same blobs> | zstd -T0 -3
  verify   petra.core bundle verification                 vs  zstd -dc <bundle> | sha256sum
  load     petra.core verify + push into a registry       vs  skopeo copy oci:<layout> docker://<registry>
  ingest   the registry's own ceiling: the same blobs PUT whole by curl, 4 at a time, into a fresh registry (no
           client does less); load's ratio cannot go below this row's ratio to skopeo
  parity   petra_diode parity parts on the bundle, k=8 data parts and m=2 parity parts: the size overhead, and
           the encode (sending) and rebuild (receiving, two data parts lost) throughput in MB/s of data covered

Peak RSS and the bytes a step writes to disk come from /usr/bin/time -v. Targets: create <= 1.3x, verify <= 1.2x,
load <= 0.5x (issue 14, with the load's disk writes <= 0.1x the bundle), peak RSS <= 300 MB. The machine's load
average is printed with each step: other work on the machine slows every step, so compare ratios of the same run.

``make bench-large`` (``--large``; outside CI, it needs about 20 GB of disk) runs create, verify and load for one
image with a single 6 GiB layer (BENCH_LARGE_GIB overrides), to show memory stays flat and the layer loads whole.
Petra fsyncs a bundle before renaming it into place (a bundle that crosses a CDS should not be lost to a crash),
so create is also compared with the baseline followed by ``sync`` of its output.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.petra.core.tests.support import images, servers  # noqa: E402  (needs the path above)

OUT = os.path.join(ROOT, "bench-out")
LAYER_MIB = 128
TARGETS = {"create": 1.3, "verify": 1.2, "load": 0.5}
TEMP_DISK_TARGET = 0.1  # bytes the load writes to disk, as a share of the bundle
RSS_TARGET_MB = 300

CREATE = """
import sys
sys.path.insert(0, %(collections)r)
from ansible_collections.petra.core.plugins.module_utils.bundle.create import create_bundle
from ansible_collections.petra.core.plugins.module_utils.bundle.spec import BundleSpec
from ansible_collections.petra.core.plugins.module_utils.oci.registry import ClientPool
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
spec = BundleSpec({"apiVersion": "petra.dev/v1alpha1", "kind": "Bundle",
                   "metadata": {"name": "bench", "version": "1.0.0"}, "images": [{"ref": %(ref)r}]}, %(out)r)
create_bundle(spec, %(dest)r, load_signer(%(key)r), ClientPool(insecure_registries=[%(host)r]),
              environ={"SOURCE_DATE_EPOCH": "1767225600"}, force=True)
"""

LOAD = """
import sys
sys.path.insert(0, %(collections)r)
from ansible_collections.petra.core.plugins.module_utils.adapters.bundle import run_load
run_load({"src": %(dest)r, "public_keys": [%(pub)r], "signature": None, "registry": %(high)r + "/petra",
          "ca_file": None, "registry_username": None, "registry_password": None, "insecure_registries": [%(high)r],
          "registry_timeout": 120.0, "registry_retries": 2, "parallel": 4, "registries_dest": None,
          "registries_ca_path": "/etc/rancher/k3s/petra-registry-ca.pem"}, check_mode=False)
"""

VERIFY = """
import sys
sys.path.insert(0, %(collections)r)
from ansible_collections.petra.core.plugins.module_utils.bundle.verify import load_public_keys, verify_bundle
verify_bundle(%(dest)r, load_public_keys([%(pub)r]))
"""


PARITY = """
import json, os, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.petra.core.plugins.module_utils.diode import parity, parts
from ansible_collections.petra.core.plugins.module_utils.signing.keys import load_signer
out = %(parity_dir)r
os.makedirs(out)
plain = parts.split_bundle(%(dest)r, out, load_signer(%(key)r), %(part_size)d)  # the 8 data parts, no parity yet
plan = parts.PartPlan(%(dest)r, %(part_size)d)
index = json.load(open(os.path.join(out, plain["index"])))["index"]
names = parity.parity_names(plan.stem, %(parity)d, "tar")
started = time.perf_counter()
block, _written = parity.write_parity(%(dest)r, index["parts"], names, plan.stem, out, plan.limit)
encode_s = time.perf_counter() - started
index["parity"] = block
lost = [part["name"] for part in index["parts"][:%(parity)d]]
for name in lost:
    os.unlink(os.path.join(out, name))
started = time.perf_counter()
parity.rebuild(index, out, lost)
decode_s = time.perf_counter() - started
with open(%(parity_result)r, "w") as handle:
    json.dump({"k": len(index["parts"]), "m": block["m"], "block_size": block["blockSize"], "encode_s": encode_s,
               "decode_s": decode_s, "bundle": plan.size,
               "parity_bytes": sum(part["partSize"] for part in block["parts"])}, handle)
"""
PARITY_DATA_PARTS, PARITY_PARTS = 8, 2


def timed(command, shell=False, written=None):
    """(seconds, peak RSS in MB) of a command run under /usr/bin/time -v; ``written`` (a dict) gets the bytes it
    wrote to disk ("bytes") and the machine's load average before it started ("load")."""
    # Start each measurement with no dirty pages from the previous step competing for the disk.
    subprocess.run(["sync"], check=True, timeout=600)
    load = os.getloadavg()[0]
    argv = ["/usr/bin/time", "-v"] + (["bash", "-o", "pipefail", "-c", command] if shell else command)
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (command, result.stderr[-3000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024.0
    if written is not None:
        written["bytes"] = int(re.search(r"File system outputs: (\d+)", result.stderr).group(1)) * 512
        written["load"] = round(load, 1)
    return elapsed, rss


def ingest_ceiling(blobs, host, parallel=4):
    """Seconds for curl to PUT every blob of an OCI layout whole into a registry, ``parallel`` at a time: what the
    registry itself needs to take the bytes in, with next to no client work."""
    def put(name):
        headers = subprocess.run(["curl", "-sf", "-o", "/dev/null", "-D", "-", "-X", "POST",
                                  "http://%s/v2/ceiling/blobs/uploads/" % host],
                                 check=True, capture_output=True, text=True, timeout=600).stdout
        location = [line.split(":", 1)[1].strip() for line in headers.splitlines()
                    if line.lower().startswith("location:")][0]
        if location.startswith("/"):
            location = "http://%s%s" % (host, location)
        subprocess.run(["curl", "-sf", "-o", "/dev/null", "-X", "PUT", "-H", "Content-Type: application/octet-stream",
                        "-T", os.path.join(blobs, name),
                        location + ("&" if "?" in location else "?") + "digest=sha256:" + name],
                       check=True, timeout=3600)

    subprocess.run(["sync"], check=True, timeout=600)
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(parallel) as pool:
        list(pool.map(put, sorted(os.listdir(blobs))))
    return time.monotonic() - started


def bench_size(size_mib, registry, key, pub):
    work = os.path.join(OUT, "%dmib" % size_mib)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    layout = os.path.join(work, "layout")
    layers = max(1, size_mib // LAYER_MIB)
    images.build_image(layout, "big", ["%d-%d" % (size_mib, i) for i in range(layers)],
                       layer_size=LAYER_MIB * 1024 * 1024, workdir=work)
    repository = "bench/big%d" % size_mib
    images.push(layout, "big", registry, repository, "1.0")
    ref = "%s/%s:1.0" % (registry.host, repository)
    dest = os.path.join(work, "bundle.tar.zst")
    params = dict(collections=COLLECTIONS, ref=ref, out=work, dest=dest, key=key, pub=pub, host=registry.host)
    blobs = os.path.join(layout, "blobs", "sha256")
    content = sum(os.path.getsize(os.path.join(blobs, name)) for name in os.listdir(blobs))

    create_s, create_rss = timed([sys.executable, "-c", CREATE % params])
    baseline = "tar -C %s -cf - . | zstd -q -T0 -3 -o %s/baseline.tar.zst -f" % (blobs, work)
    base_create_s, _rss = timed(baseline, shell=True)
    # Petra fsyncs the bundle before renaming it into place; the same baseline made durable, for comparison.
    durable_s, _rss = timed(baseline + " && sync %s/baseline.tar.zst" % work, shell=True)
    verify_s, verify_rss = timed([sys.executable, "-c", VERIFY % params])
    base_verify_s, _rss = timed("zstd -q -dc %s | sha256sum >/dev/null" % dest, shell=True)
    load_s, load_rss, written, skopeo_s, ceiling_s = bench_load(work, layout, "big", params)
    shutil.rmtree(layout, ignore_errors=True)
    parity_row = bench_parity(work, params)
    mb = content / 1e6
    return {
        "size_mib": size_mib, "content_mb": round(mb, 1),
        "create": {"petra_s": round(create_s, 2), "baseline_s": round(base_create_s, 2),
                   "ratio": round(create_s / base_create_s, 2), "petra_mb_s": round(mb / create_s, 1),
                   "durable_baseline_s": round(durable_s, 2), "durable_ratio": round(create_s / durable_s, 2),
                   "peak_rss_mb": round(create_rss, 1)},
        "verify": {"petra_s": round(verify_s, 2), "baseline_s": round(base_verify_s, 2),
                   "ratio": round(verify_s / base_verify_s, 2), "petra_mb_s": round(mb / verify_s, 1),
                   "peak_rss_mb": round(verify_rss, 1)},
        "load": {"petra_s": round(load_s, 2), "baseline_s": round(skopeo_s, 2),
                 "ratio": round(load_s / skopeo_s, 2), "petra_mb_s": round(mb / load_s, 1),
                 "peak_rss_mb": round(load_rss, 1), "disk_written_mb": round(written["bytes"] / 1e6, 1),
                 "disk_ratio": round(written["bytes"] / float(os.path.getsize(dest)), 4),
                 "machine_load": written["load"], "ingest_s": round(ceiling_s, 2),
                 "ingest_ratio": round(ceiling_s / skopeo_s, 2)},
        "parity": parity_row,
    }


def bench_load(work, layout, tag, params):
    """(petra s, petra peak RSS MB, {bytes written, machine load}, skopeo s, registry ingest ceiling s), each into a
    fresh registry so that none finds blobs already there."""
    written = {}
    with servers.Registry(_fresh(work, "high-petra")) as high:
        load_s, load_rss = timed([sys.executable, "-c", LOAD % dict(params, high=high.host)], written=written)
    shutil.rmtree(os.path.join(work, "high-petra"), ignore_errors=True)
    with servers.Registry(_fresh(work, "high-skopeo")) as high:
        skopeo_s, _rss = timed(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:%s" % (layout, tag),
                                "docker://%s/bench/big:1.0" % high.host])
    shutil.rmtree(os.path.join(work, "high-skopeo"), ignore_errors=True)
    with servers.Registry(_fresh(work, "high-ceiling")) as high:
        ceiling_s = ingest_ceiling(os.path.join(layout, "blobs", "sha256"), high.host)
    shutil.rmtree(os.path.join(work, "high-ceiling"), ignore_errors=True)
    return load_s, load_rss, written, skopeo_s, ceiling_s


def bench_parity(work, params):
    """Parity on the bundle just made: 8 data parts (the part size follows the bundle) and 2 parity parts."""
    from ansible_collections.petra.core.plugins.module_utils.diode import parts
    size = os.path.getsize(params["dest"])
    part_size = max(parts.SMALLEST_MAX_PART_SIZE,
                    -(-size // PARITY_DATA_PARTS) + parts.TAR_OVERHEAD + parts.PAX_ROOM)
    result_path = os.path.join(work, "parity.json")
    settings = dict(params, parity_dir=os.path.join(work, "parity"), part_size=part_size, parity=PARITY_PARTS,
                    parity_result=result_path)
    _elapsed, rss = timed([sys.executable, "-c", PARITY % settings])
    with open(result_path) as handle:
        row = json.load(handle)
    shutil.rmtree(settings["parity_dir"], ignore_errors=True)
    covered = row["k"] * row["block_size"] / 1e6  # every data share, padding included, is read once per pass
    return {"k": row["k"], "m": row["m"], "overhead_pct": round(100.0 * row["parity_bytes"] / row["bundle"], 1),
            "encode_s": round(row["encode_s"], 2), "encode_mb_s": round(covered / row["encode_s"], 1),
            "decode_s": round(row["decode_s"], 2), "decode_mb_s": round(covered / row["decode_s"], 1),
            "peak_rss_mb": round(rss, 1)}


def _fresh(work, name):
    path = os.path.join(work, name)
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def build_single_layer_layout(layout, tag, size):
    """An OCI layout with one image of a single uncompressed layer of ``size`` random bytes, written in chunks so that
    memory stays flat whatever the size (umoci would gzip it, which takes long and changes nothing for the bench)."""
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs)
    rng = random.Random(size)
    hasher = hashlib.sha256()
    temp = os.path.join(layout, "layer.tmp")
    info = tarfile.TarInfo("data/large.bin")
    info.size, info.mtime = size, 0
    with open(temp, "wb") as handle:
        def write(data):
            hasher.update(data)
            handle.write(data)
        write(info.tobuf(format=tarfile.PAX_FORMAT))
        left = size
        while left:
            piece = rng.randbytes(min(left, 16 << 20))
            write(piece)
            left -= len(piece)
        write(b"\0" * (-size % tarfile.BLOCKSIZE) + b"\0" * (2 * tarfile.BLOCKSIZE))
        layer_size = handle.tell()
    layer = "sha256:" + hasher.hexdigest()
    os.rename(temp, os.path.join(blobs, layer.split(":")[1]))

    def add(document):
        data = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest.split(":")[1]), "wb") as handle:
            handle.write(data)
        return digest, len(data)

    config, config_size = add({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                               "rootfs": {"type": "layers", "diff_ids": [layer]}})
    manifest, manifest_size = add({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": layer_size}]})
    with open(os.path.join(layout, "oci-layout"), "w") as handle:
        json.dump({"imageLayoutVersion": "1.0.0"}, handle)
    with open(os.path.join(layout, "index.json"), "w") as handle:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag}}]}, handle)
    return layer_size


def bench_large(gib):
    """One image with a single ``gib`` GiB layer: created, verified and loaded (flat memory), load against skopeo."""
    from ansible_collections.petra.core.tests.support import pki
    work = os.path.join(OUT, "large")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    key = os.path.join(work, "bench.pem")
    pub = pki.write_ec_key(key)
    layout = os.path.join(work, "layout")
    print("bench-large: a single %d GiB layer ..." % gib, flush=True)
    layer_size = build_single_layer_layout(layout, "large", gib << 30)
    dest = os.path.join(work, "bundle.tar.zst")
    with servers.Registry(_fresh(work, "source")) as source:
        images.push(layout, "large", source, "bench/large", "1.0")
        params = dict(collections=COLLECTIONS, ref="%s/bench/large:1.0" % source.host, out=work, dest=dest, key=key,
                      pub=pub, host=source.host)
        create_s, create_rss = timed([sys.executable, "-c", CREATE % params])
    shutil.rmtree(os.path.join(work, "source"), ignore_errors=True)
    verify_s, verify_rss = timed([sys.executable, "-c", VERIFY % params])
    load_s, load_rss, written, skopeo_s, ceiling_s = bench_load(work, layout, "large", params)
    bundle_size = os.path.getsize(dest)
    shutil.rmtree(work, ignore_errors=True)
    mb = layer_size / 1e6
    print("\n%-8s %10s %9s %12s" % ("step", "petra s", "MB/s", "peak RSS MB"))
    for step, seconds, rss in (("create", create_s, create_rss), ("verify", verify_s, verify_rss),
                               ("load", load_s, load_rss)):
        print("%-8s %10.2f %9.1f %12.1f" % (step, seconds, mb / seconds, rss))
    print("load: skopeo copy %.2fs, ratio %.2fx; registry ingest ceiling (curl PUT) %.2fs, ratio %.2fx; load wrote "
          "%.1f MB to disk (%.4fx the %.0f MB bundle); machine load average %.1f" % (
              skopeo_s, load_s / skopeo_s, ceiling_s, ceiling_s / skopeo_s, written["bytes"] / 1e6,
              written["bytes"] / float(bundle_size), bundle_size / 1e6, written["load"]))
    failed = ["%s: %.0f MB RSS > %d MB" % (step, rss, RSS_TARGET_MB) for step, rss in
              (("create", create_rss), ("verify", verify_rss), ("load", load_rss)) if rss > RSS_TARGET_MB]
    print("missed: " + "; ".join(failed) if failed else "memory flat: every step under %d MB" % RSS_TARGET_MB)


def main():
    if "--large" in sys.argv[1:]:
        return bench_large(int(os.environ.get("BENCH_LARGE_GIB", "6")))
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1024 4096").split()]
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(os.path.join(OUT, "registry"))
    from ansible_collections.petra.core.tests.support import pki
    key = os.path.join(OUT, "bench.pem")
    pub = pki.write_ec_key(key)
    registry = servers.Registry(os.path.join(OUT, "registry")).start()
    results = []
    try:
        for size in sizes:
            print("bench: %d MiB ..." % size, flush=True)
            results.append(bench_size(size, registry, key, pub))
    finally:
        registry.stop()
        shutil.rmtree(os.path.join(OUT, "registry", "storage"), ignore_errors=True)
    print("\n%-8s %-7s %10s %12s %7s %9s %12s" % ("size", "step", "petra s", "baseline s", "ratio", "MB/s", "peak RSS MB"))
    failed = []
    for row in results:
        for step in ("create", "verify", "load"):
            r = row[step]
            print("%-8s %-7s %10.2f %12.2f %6.2fx %9.1f %12.1f" % (
                "%dMiB" % row["size_mib"], step, r["petra_s"], r["baseline_s"], r["ratio"], r["petra_mb_s"],
                r["peak_rss_mb"]))
            if r["ratio"] > TARGETS[step]:
                failed.append("%s at %d MiB: %.2fx > %.1fx" % (step, row["size_mib"], r["ratio"], TARGETS[step]))
            if r["peak_rss_mb"] > RSS_TARGET_MB:
                failed.append("%s at %d MiB: %.0f MB RSS > %d MB" % (
                    step, row["size_mib"], r["peak_rss_mb"], RSS_TARGET_MB))
    with open(os.path.join(OUT, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print("\n%-8s %-9s %10s %10s %10s %10s %10s %12s" % (
        "size", "parity", "overhead", "encode s", "MB/s", "rebuild s", "MB/s", "peak RSS MB"))
    for row in results:
        p = row["parity"]
        print("%-8s %-9s %9.1f%% %10.2f %10.1f %10.2f %10.1f %12.1f" % (
            "%dMiB" % row["size_mib"], "k=%d m=%d" % (p["k"], p["m"]), p["overhead_pct"], p["encode_s"],
            p["encode_mb_s"], p["decode_s"], p["decode_mb_s"], p["peak_rss_mb"]))
        if p["peak_rss_mb"] > RSS_TARGET_MB:
            failed.append("parity at %d MiB: %.0f MB RSS > %d MB" % (row["size_mib"], p["peak_rss_mb"], RSS_TARGET_MB))
    print("parity: encode = the m parity parts written from the bundle; rebuild = m lost data parts rebuilt from the"
          " k intact parts;\n        MB/s of data covered (k x block size)")
    for row in results:
        print("%-8s create vs the durable baseline (tar | zstd && sync): %.2fs, ratio %.2fx" % (
            "%dMiB" % row["size_mib"], row["create"]["durable_baseline_s"], row["create"]["durable_ratio"]))
    print()
    for row in results:
        r = row["load"]
        print("%-8s load %.2fx of skopeo (target <= %.1fx); registry ingest ceiling %.2fs = %.2fx of skopeo; "
              "load wrote %.1f MB to disk = %.4fx the bundle (target <= %.1fx); machine load average %.1f" % (
                  "%dMiB" % row["size_mib"], r["ratio"], TARGETS["load"], r["ingest_s"], r["ingest_ratio"],
                  r["disk_written_mb"], r["disk_ratio"], TEMP_DISK_TARGET, r["machine_load"]))
        if r["disk_ratio"] > TEMP_DISK_TARGET:
            failed.append("load at %d MiB wrote %.2fx the bundle to disk" % (row["size_mib"], r["disk_ratio"]))
    if len(results) > 1:
        rss = [row["load"]["peak_rss_mb"] for row in results]
        print("load peak RSS from %dMiB to %dMiB: %s MB" % (results[0]["size_mib"], results[-1]["size_mib"],
                                                            " -> ".join("%.0f" % value for value in rss)))
    print("\nbaselines: create = tar -cf - | zstd -T0 -3 on the same blobs; verify = zstd -dc | sha256sum;")
    print("           load = skopeo copy of the same image from an OCI directory into a fresh registry;")
    print("           ingest ceiling = curl PUTs of the same blobs, 4 at a time, into a fresh registry")
    print("targets: create <= %.1fx, verify <= %.1fx, load <= %.1fx, peak RSS <= %d MB" % (
        TARGETS["create"], TARGETS["verify"], TARGETS["load"], RSS_TARGET_MB))
    print("missed: " + "; ".join(failed) if failed else "all targets met")


if __name__ == "__main__":
    main()
