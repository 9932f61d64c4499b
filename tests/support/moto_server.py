"""moto in server mode on loopback, with the test-harness-only fix for KMS Sign with MessageType=DIGEST.

moto's KMS Sign signs the message as if it were RAW even when MessageType=DIGEST, which real KMS does
not. The patch below is applied to the in-process moto server only, never to product code.
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from moto.kms import responses as kms_responses
from moto.server import ThreadedMotoServer

from ansible_collections.petra.core.tests.support.servers import free_port, wait_for_port

_HASHES = {"ECDSA_SHA_256": hashes.SHA256, "ECDSA_SHA_384": hashes.SHA384, "ECDSA_SHA_512": hashes.SHA512}
_original_sign = kms_responses.KmsResponse.sign


def _sign_with_digest(self):
    if self._get_param("MessageType") != "DIGEST":
        return _original_sign(self)
    key_id = self._get_param("KeyId")
    algorithm = self._get_param("SigningAlgorithm")
    message = self._get_param("Message")
    # moto parses blob members with the service model (raw bytes) or not at all (base64 text).
    digest = message if isinstance(message, bytes) else base64.b64decode(message)
    key = self.kms_backend.describe_key(key_id)
    hash_class = _HASHES[algorithm]
    if len(digest) != hash_class.digest_size:
        raise ValueError("digest length %d does not fit %s" % (len(digest), algorithm))
    signature = key.private_key.private_key.sign(digest, ec.ECDSA(utils.Prehashed(hash_class())))
    return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(),
                       "SigningAlgorithm": algorithm})


class MotoServer:
    def __init__(self):
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def __enter__(self):
        kms_responses.KmsResponse.sign = _sign_with_digest
        self._server.start()
        wait_for_port(self.port)
        return self

    def __exit__(self, *exc):
        self._server.stop()
        kms_responses.KmsResponse.sign = _original_sign
