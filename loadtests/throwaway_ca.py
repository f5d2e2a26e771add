"""A throwaway certificate authority and a server certificate it signed, made with openssl.

The field bench's nginx stub and the tests' TLS upstreams serve `cert`/`key`;
the client under test trusts `ca` (`IAN_UPSTREAM_CA`), as a retailer behind TLS
inspection trusts their company's CA. Nothing is kept beyond `directory`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

NAMES = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"


@dataclass(frozen=True)
class Tls:
    ca: Path  # the CA's certificate: what a client trusts
    cert: Path  # the server's certificate, for localhost / 127.0.0.1 / ::1
    key: Path


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make(directory: Path, name: str = "ian-test") -> Tls:
    """A fresh CA and a server certificate for loopback, valid for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    tls = Tls(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca_key, csr = directory / "ca.key", directory / "server.csr"
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(tls.ca), "-days", "1",
            "-subj", f"/CN={name} throwaway CA", "-addext", "basicConstraints=critical,CA:true",
            "-addext", "keyUsage=critical,keyCertSign")
    openssl("req", *ec, "-keyout", str(tls.key), "-out", str(csr), "-subj", "/CN=localhost")
    extensions = directory / "server.ext"
    extensions.write_text(f"{NAMES}\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(tls.ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(tls.cert), "-days", "1", "-extfile", str(extensions))
    return tls
