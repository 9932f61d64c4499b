"""A TCP proxy on loopback that stalls or resets connections, to put in front of a real server.

It sees only bytes (TLS passes through untouched). A fault hits a connection once ``after`` bytes have been
forwarded from the client to the server on it: "stall" forwards nothing more in either direction and holds the
connection open until the client gives up (a network path that stops answering); "reset" closes it with a TCP RST.
``faults`` limits how many connections are hit (None: every connection that carries that much); connections after
that are forwarded normally. Every thread waits in short steps and ends with ``stop()``.
"""

from __future__ import annotations

import select
import socket
import struct
import threading

from ansible_collections.petra.core.tests.support.servers import free_port

_STEP = 0.2  # seconds: how often blocked threads look at the stop flag
# Linux reports a peer's close as POLLRDHUP without reading: a stalled connection keeps unread data queued.
_POLLRDHUP = getattr(select, "POLLRDHUP", 0x2000)


class _Connection:
    def __init__(self, client, upstream):
        self.client = client
        self.upstream = upstream
        self.forwarded = 0
        self.decided = False  # whether this connection has been given its fault (or been spared)
        self.stalled = False
        self.closed = threading.Event()

    def close(self, reset=False):
        if self.closed.is_set():
            return
        self.closed.set()
        if reset:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        for sock in (self.client, self.upstream):
            try:
                sock.close()
            except OSError:
                pass


class FaultyProxy:
    """``with FaultyProxy(port, mode="stall", after=1 << 20, faults=1) as proxy:`` then connect to ``proxy.host``."""

    def __init__(self, upstream_port, mode=None, after=0, faults=None):
        if mode not in (None, "stall", "reset"):
            raise ValueError("mode must be None, 'stall' or 'reset'")
        self.upstream_port = upstream_port
        self.mode = mode
        self.after = after
        self.faults = faults
        self.faulted = 0  # connections hit so far
        self.connections = 0
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self._open = []
        self._listener = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(_STEP)
        self._spawn(self._accept)
        return self

    def stop(self):
        self._stop.set()
        if self._listener is not None:
            self._listener.close()
        for connection in list(self._open):
            connection.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    # -- forwarding -----------------------------------------------------------------------------------
    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _address = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(_STEP)
            connection = _Connection(client, upstream)
            with self._lock:
                self.connections += 1
                self._open.append(connection)
            self._spawn(self._pump, connection, client, upstream, True)
            self._spawn(self._pump, connection, upstream, client, False)

    def _take_fault(self, connection):
        """Whether this connection is one to hit (decided once, when it first reaches ``after`` bytes)."""
        with self._lock:
            connection.decided = True
            if self.faults is not None and self.faulted >= self.faults:
                return False
            self.faulted += 1
            return True

    def _pump(self, connection, source, sink, to_server):
        try:
            while not self._stop.is_set() and not connection.closed.is_set():
                if connection.stalled:
                    self._hold(connection)
                    return
                try:
                    data = source.recv(65536)
                except socket.timeout:
                    continue
                if not data:
                    return
                if connection.stalled:
                    continue  # what arrives after the stall is not passed on
                if to_server and self.mode and not connection.decided and \
                        connection.forwarded + len(data) > self.after and self._take_fault(connection):
                    sink.sendall(data[:self.after - connection.forwarded])
                    connection.forwarded = self.after
                    if self.mode == "reset":
                        connection.close(reset=True)
                        return
                    connection.stalled = True
                    continue
                if to_server:
                    connection.forwarded += len(data)
                sink.sendall(data)
        except OSError:
            return
        finally:
            if not connection.stalled or self._stop.is_set():
                connection.close()

    def _hold(self, connection):
        """A stalled connection: read nothing, send nothing, until the client closes it or the proxy stops."""
        poller = select.poll()
        poller.register(connection.client, _POLLRDHUP | select.POLLHUP | select.POLLERR)
        while not self._stop.is_set() and not connection.closed.is_set():
            if poller.poll(_STEP * 1000):
                break
        connection.close()
