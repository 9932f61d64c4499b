"""A Kubernetes API for tests: kmock's KubernetesEmulator served on loopback from a thread of its own."""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading

import aiohttp.web
import kmock
import yaml


# kmock reads /api/v1/namespaces[/<name>] as the prefix of a namespaced path and fails (kmock 0.8): Namespace
# objects are served under another plural instead, which only the test harness sees.
_NAMESPACES = re.compile(r"^/api/v1/namespaces(/[^/]+)?/?$")


class EvictingEmulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the pods/eviction subresource, as the API server answers it, and Namespace objects.

    ``blocked`` maps (namespace, pod) to how many more evictions a PodDisruptionBudget refuses with 429
    (a negative number: always); every other eviction deletes the pod and answers 201.
    """

    blocked = None
    evictions = None
    namespaces = None
    _NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(?:/([^/]+))?/?$")

    async def __call__(self, raw_request):
        # kmock reads /api/v1/namespaces[/<name>] as a namespace prefix, not as the Namespace resource itself:
        # Namespaces are served here, as plain stored objects.
        match = self._NAMESPACE_PATH.match(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        name, method = match.group(1), raw_request.method.upper()
        body = await raw_request.read()
        if name is None and method == "GET":
            return aiohttp.web.json_response({"kind": "NamespaceList", "apiVersion": "v1", "metadata": {},
                                              "items": list(self.namespaces.values())})
        if name is None and method == "POST":
            obj = json.loads(body)
            name = obj["metadata"]["name"]
            if name in self.namespaces:
                return self._status(409, "AlreadyExists", "namespaces %r already exists" % name)
            obj["status"] = {"phase": "Active"}
            self.namespaces[name] = obj
            return aiohttp.web.json_response(obj, status=201)
        if name not in self.namespaces:
            return self._status(404, "NotFound", "namespaces %r not found" % name)
        if method == "DELETE":
            return aiohttp.web.json_response(self.namespaces.pop(name))
        if method == "PATCH":
            patch = json.loads(body)
            meta = self.namespaces[name]["metadata"]
            for key in ("labels", "annotations"):
                if key in patch.get("metadata", {}):
                    meta[key] = dict(meta.get(key) or {}, **patch["metadata"][key])
        return aiohttp.web.json_response(self.namespaces[name])

    @staticmethod
    def _status(code, reason, message):
        return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code,
                                          "reason": reason, "message": message}, status=code)

    async def __call__(self, raw_request):
        match = _NAMESPACES.match(raw_request.rel_url.path)
        if match:
            path = "/api/v1/petra-test-namespaces" + (match.group(1) or "")
            raw_request = raw_request.clone(rel_url=raw_request.rel_url.with_path(path))
        return await super().__call__(raw_request)

    async def _handle(self, request):
        resource = request.resource
        if resource is not None and resource.plural == "pods" and request.subresource == "eviction" \
                and str(request.method).upper().endswith("POST"):
            return await self._evict(resource, request.namespace, request.name)
        return await super()._handle(request)

    async def _evict(self, resource, namespace, name):
        key = (resource, namespace, name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                return aiohttp.web.json_response({"kind": "Status", "code": 404, "reason": "NotFound",
                                                  "message": "pods %r not found" % name}, status=404)
            remaining = self.blocked.get((namespace, name), 0)
            if remaining:
                self.blocked[(namespace, name)] = remaining - 1 if remaining > 0 else remaining
                self.evictions.append((namespace, name, 429))
                return aiohttp.web.json_response({
                    "kind": "Status", "code": 429, "reason": "TooManyRequests",
                    "message": "Cannot evict pod as it would violate the pod's disruption budget."}, status=429)
            raw = self._objects[key].raw
            self._objects[key].delete()
            await self._buses[resource].put({"type": "DELETED", "object": raw})
            self.evictions.append((namespace, name, 201))
        return aiohttp.web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201},
                                         status=201)


class KubeAPI:
    """Start with ``with KubeAPI(workdir) as api:``; ``api.kubeconfig`` points a client at it."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.kubeconfig = os.path.join(workdir, "kubeconfig")
        self.url = None
        self.handler = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error = None
        self.blocked = {}
        self.evictions = []

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to the test thread by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self):
        self._stop = asyncio.Event()
        async with EvictingEmulator(strict=False) as handler, kmock.Server(handler) as server:
            handler.blocked = self.blocked
            handler.evictions = self.evictions
            handler.namespaces = {}
            self.handler = handler
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def requests(self):
        """Every request the API received: (method, path, data)."""
        return [(str(r.method), str(r.url.path) if hasattr(r, "url") else "", r.data) for r in list(self.handler)]

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(15):
            raise TimeoutError("kmock did not start within 15s")
        if self._error is not None:
            raise self._error
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {"token": "test"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": "flux-system"}}],
        }
        with open(self.kubeconfig, "w") as handle:
            yaml.safe_dump(config, handle)
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
