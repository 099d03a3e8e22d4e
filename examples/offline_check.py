"""Checking a certificate offline, as a third party would (examples/agent_worker.py step 11).

Nothing but `cryptography` and `rfc8785`: the DSSE signature with the published keys, and the
result digest (docs/certificates.md describes the format).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

DSSE_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def verify_offline(envelope: bytes, jwks: Mapping[str, Any]) -> str:
    """VALID, or why not: the DSSE signature checked with a published, non-revoked key.

    What a third party does with the certificate file and the published keys, with nothing
    but `cryptography` and `rfc8785` (docs/certificates.md describes the format).
    """
    try:
        document = json.loads(envelope)
        payload = base64.b64decode(document["payload"], validate=True)
        signatures = document["signatures"]
        payload_type = document["payloadType"]
    except (ValueError, KeyError, TypeError):
        return "MALFORMED"
    if payload_type != DSSE_PAYLOAD_TYPE:
        return "PAYLOAD_TYPE_MISMATCH"
    # DSSE v1 pre-authentication encoding: what the signature covers.
    type_bytes = payload_type.encode()
    signed = b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)
    keys = {key.get("kid"): key for key in jwks.get("keys", []) if isinstance(key, dict)}
    verdict = "UNKNOWN_KEY"
    for signature in signatures:
        jwk = keys.get(signature.get("keyid"))
        if jwk is None:
            continue
        public_key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(_b64url(jwk["x"]), "big"),
            int.from_bytes(_b64url(jwk["y"]), "big"),
            ec.SECP256R1(),
        ).public_key()
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        if hashlib.sha256(der).hexdigest() != signature["keyid"]:
            continue  # a key published under someone else's id
        if jwk.get("status") == "revoked":
            verdict = "KEY_REVOKED"
            continue
        try:
            public_key.verify(base64.b64decode(signature["sig"]), signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            verdict = "SIGNATURE_INVALID"
            continue
        predicate = json.loads(payload).get("predicate", {})
        digest = hashlib.sha256(rfc8785.dumps(predicate.get("result"))).hexdigest()
        return "VALID" if predicate.get("resultDigest", {}).get("sha256") == digest else "MALFORMED"
    return verdict


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
