"""A Kubernetes API for tests: kmock's KubernetesEmulator served on loopback from a thread of its own."""

from __future__ import annotations

import asyncio
import os
import threading

import kmock
import yaml


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

    def _run(self):
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to the test thread by __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self):
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator(strict=False) as handler, kmock.Server(handler) as server:
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
