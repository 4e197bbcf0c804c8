"""Certificates and node keys of a deployment: one job, writing the key material.

A fresh CA with a server certificate for the SuperLink (TLS), and one authentication key pair
per SuperNode (SuperNode authentication). Private keys are written readable only by their owner.

See Also
--------
fedrobust.deploy.commands : the command lines that use these files.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Certificates", "make_certificates", "make_node_keys"]


@dataclass(frozen=True)
class Certificates:
    """Paths of the deployment's TLS files (PEM): the CA certificate and the server's pair."""

    ca_cert: Path
    server_cert: Path
    server_key: Path



def _write_private(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def make_certificates(
    directory: str | os.PathLike[str], hosts: Sequence[str] = ("127.0.0.1", "localhost"), days: int = 365
) -> Certificates:
    """Write a fresh CA and a server certificate signed by it for ``hosts``.

    Parameters
    ----------
    directory : path
        Where ``ca.crt``, ``ca.key``, ``server.crt`` and ``server.key`` go (created if missing).
    hosts : sequence of str
        The names and IP addresses SuperNodes and the ``flwr`` CLI use to reach the SuperLink
        (the certificate's subject alternative names); IPs become IP entries, the rest DNS names.
    days : int
        Validity of both certificates.

    Returns
    -------
    Certificates
        The paths; the SuperLink gets all three, SuperNodes and ``flwr`` only ``ca_cert``.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    if not hosts or any(not isinstance(h, str) or not h.strip() for h in hosts):
        raise ValueError(f"hosts must be a non-empty list of host names or IP addresses, got {hosts!r}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)

    def key_usage(**on: bool) -> Any:
        names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
                 "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
        return x509.KeyUsage(**{n: on.get(n, False) for n in names})

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedrobust deployment CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(digital_signature=True, key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    alt_names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            alt_names.append(x509.DNSName(host))
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, key_agreement=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem_key = {"encoding": serialization.Encoding.PEM, "format": serialization.PrivateFormat.PKCS8,
               "encryption_algorithm": serialization.NoEncryption()}
    certs = Certificates(out / "ca.crt", out / "server.crt", out / "server.key")
    certs.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(out / "ca.key", ca_key.private_bytes(**pem_key))
    certs.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(certs.server_key, server_key.private_bytes(**pem_key))
    return certs


def make_node_keys(directory: str | os.PathLike[str], count: int) -> list[tuple[Path, Path]]:
    """Write ``count`` SuperNode authentication key pairs (EC P-384, OpenSSH format).

    SuperNode ``i`` starts with ``--auth-supernode-private-key node-i.key``; its public key
    ``node-i.pub`` is registered on the SuperLink with ``flwr supernode register``.

    Returns
    -------
    list of (private key path, public key path)
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP384R1())
        private, public = out / f"node-{i}.key", out / f"node-{i}.pub"
        _write_private(private, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        ))
        public.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ) + f" fedrobust-node-{i}\n".encode())
        pairs.append((private, public))
    return pairs
