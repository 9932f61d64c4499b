"""`make bench`: bundle create and verify throughput and peak memory, against the baseline tools in the same run.

For each size (MiB, default 1024 and 2048; BENCH_SIZES overrides) it builds an image of random, incompressible
layers (like real gzip layers) with umoci, pushes it to a loopback registry, then measures:

  create   petra.core bundle creation from the registry   vs  tar -cf - <the same blobs> | zstd -T0 -3
  verify   petra.core bundle verification                 vs  zstd -dc <bundle> | sha256sum
  load     petra.core verify + push into a registry       vs  skopeo copy oci:<layout> docker://<registry>
  parity   petra_diode parity parts on the bundle, k=8 data parts and m=2 parity parts: the size overhead, and
           the encode (sending) and rebuild (receiving, two data parts lost) throughput in MB/s of data covered

Peak RSS comes from /usr/bin/time -v. Targets: create <= 1.3x, verify <= 1.2x, peak RSS <= 300 MB.
Petra fsyncs a bundle before renaming it into place (a bundle that crosses a CDS should not be lost to a crash),
so create is also compared with the baseline followed by ``sync`` of its output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.join(ROOT, ".build", "collections")
sys.path.insert(0, COLLECTIONS)

from ansible_collections.petra.core.tests.support import images, servers  # noqa: E402  (needs the path above)

OUT = os.path.join(ROOT, "bench-out")
LAYER_MIB = 128
TARGETS = {"create": 1.3, "verify": 1.2, "load": 1.0}
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


def timed(command, shell=False):
    """(seconds, peak RSS in MB) of a command run under /usr/bin/time -v."""
    # Start each measurement with no dirty pages from the previous step competing for the disk.
    subprocess.run(["sync"], check=True, timeout=600)
    argv = ["/usr/bin/time", "-v"] + (["bash", "-o", "pipefail", "-c", command] if shell else command)
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (command, result.stderr[-3000:]))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1)) / 1024.0
    return elapsed, rss


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
    # Load into a fresh registry each, so neither finds blobs already there.
    with servers.Registry(_fresh(work, "high-petra")) as high:
        load_s, load_rss = timed([sys.executable, "-c", LOAD % dict(params, high=high.host)])
    with servers.Registry(_fresh(work, "high-skopeo")) as high:
        skopeo_s, _rss = timed(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci:%s:big" % layout,
                                "docker://%s/bench/big:1.0" % high.host])
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
                 "peak_rss_mb": round(load_rss, 1)},
        "parity": parity_row,
    }


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


def main():
    sizes = [int(s) for s in os.environ.get("BENCH_SIZES", "1024 2048").split()]
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
    print("\nbaselines: create = tar -cf - | zstd -T0 -3 on the same blobs; verify = zstd -dc | sha256sum;")
    print("           load = skopeo copy of the same image from an OCI directory into a fresh registry")
    print("targets: create <= %.1fx, verify <= %.1fx, load <= %.1fx, peak RSS <= %d MB" % (
        TARGETS["create"], TARGETS["verify"], TARGETS["load"], RSS_TARGET_MB))
    print("missed: " + "; ".join(failed) if failed else "all targets met")


if __name__ == "__main__":
    main()
