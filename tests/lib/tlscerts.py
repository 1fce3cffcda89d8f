"""Throwaway certificates for the TLS tests, made with the `openssl`
command (ECDSA P-256, valid two days): self-signed ones, and a test CA
with server certificates it signs.  Shared by tests/e2e/test_tls.py and
tests/e2e/test_backend_tls.py."""
import os
import shutil
import subprocess

OPENSSL = shutil.which("openssl")
_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def _san(sans, ips=()):
    return ",".join([f"DNS:{s}" for s in sans] + [f"IP:{i}" for i in ips])


def make_cert(dirpath, name, cn, sans, ips=()):
    """A self-signed certificate and its key; returns (cert, key) paths."""
    cert = os.path.join(dirpath, f"{name}.pem")
    key = os.path.join(dirpath, f"{name}.key")
    subprocess.run([OPENSSL, "req", "-x509", *_KEY, "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", f"subjectAltName={_san(sans, ips)}"],
                   check=True, capture_output=True)
    return cert, key


def make_ca(dirpath, name="ca"):
    """A CA certificate and key that can sign; returns (cert, key)."""
    cert = os.path.join(dirpath, f"{name}.pem")
    key = os.path.join(dirpath, f"{name}.key")
    subprocess.run([OPENSSL, "req", "-x509", *_KEY, "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={name} test CA",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign"],
                   check=True, capture_output=True)
    return cert, key


def make_signed(dirpath, name, ca, cn, sans, ips=()):
    """A server certificate for `sans` (DNS) and `ips` signed by ca (its
    (cert, key)); returns (cert, key)."""
    cert = os.path.join(dirpath, f"{name}.pem")
    key = os.path.join(dirpath, f"{name}.key")
    csr = os.path.join(dirpath, f"{name}.csr")
    ext = os.path.join(dirpath, f"{name}.ext")
    subprocess.run([OPENSSL, "req", "-new", *_KEY, "-keyout", key,
                    "-out", csr, "-subj", f"/CN={cn}"],
                   check=True, capture_output=True)
    with open(ext, "w") as f:
        f.write(f"subjectAltName={_san(sans, ips)}\n")
    subprocess.run([OPENSSL, "x509", "-req", "-in", csr, "-CA", ca[0],
                    "-CAkey", ca[1], "-CAcreateserial", "-out", cert,
                    "-days", "2", "-extfile", ext],
                   check=True, capture_output=True)
    return cert, key
