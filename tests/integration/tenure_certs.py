"""Certificates for the mutual-TLS tests, made with the openssl CLI: a CA,
and leaf certificates naming a Tenure identity (subjectAltName URI
tenure://<kind>/<name>, docs/security.md) that serve and/or identify a
client on 127.0.0.1. Stdlib only."""

import os
import ssl
import subprocess
import time


def _openssl(*args, cwd=None):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise AssertionError("openssl %s failed: %s" % (" ".join(args), r.stderr.decode(errors="replace")))


class Leaf:
    def __init__(self, cert, key, ca):
        self.cert, self.key, self.ca = cert, key, ca

    def context(self, ca_file=None):
        """An SSL client context that trusts `ca_file` (default: its own CA)
        and presents this certificate."""
        ctx = ssl.create_default_context(cafile=ca_file or self.ca.cert)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


class CA:
    """A self-signed CA in `directory`/`name`.{crt,key}."""

    def __init__(self, directory, name="tenure-test-ca"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.name = name
        self.cert = os.path.join(directory, name + ".crt")
        self.key = os.path.join(directory, name + ".key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=" + name,
                 "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, file_name, cn, uris=(), expired=False, not_after=None):
        """A leaf certificate for `cn` with SAN URIs `uris` plus 127.0.0.1
        and localhost, usable by servers and clients. `expired`: valid only
        in 2020. `not_after` (a Unix time): valid from an hour ago until then."""
        key = os.path.join(self.dir, file_name + ".key")
        csr = os.path.join(self.dir, file_name + ".csr")
        cert = os.path.join(self.dir, file_name + ".crt")
        ext = os.path.join(self.dir, file_name + ".ext")
        sans = ["URI:" + u for u in uris] + ["IP:127.0.0.1", "DNS:localhost"]
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n" % ",".join(sans))
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
        if expired:
            self._issue_dated(csr, cert, ext, "20200101000000Z", "20200102000000Z")
        elif not_after is not None:
            stamp = lambda t: time.strftime("%Y%m%d%H%M%SZ", time.gmtime(t))  # noqa: E731
            self._issue_dated(csr, cert, ext, stamp(time.time() - 3600), stamp(not_after))
        else:
            _openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                     "-out", cert, "-days", "2", "-extfile", ext)
        return Leaf(cert, key, self)

    def _issue_dated(self, csr, cert, ext, start, end):
        # `openssl x509 -req` (3.0) cannot set dates in the past; `openssl ca` can.
        db = os.path.join(self.dir, "ca-db")
        os.makedirs(db, exist_ok=True)
        index = os.path.join(db, "index.txt")
        open(index, "a").close()
        conf = os.path.join(db, "ca.cnf")
        with open(conf, "w") as f:
            f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s\nnew_certs_dir=%s\nserial=%s\ndefault_md=sha256\n"
                    "policy=p\nunique_subject=no\n[p]\ncommonName=supplied\n" % (index, db, os.path.join(db, "serial")))
        serial = os.path.join(db, "serial")
        if not os.path.exists(serial):  # `openssl ca` counts on from here
            with open(serial, "w") as f:
                f.write("1000\n")
        _openssl("ca", "-batch", "-config", conf, "-cert", self.cert, "-keyfile", self.key, "-in", csr, "-out", cert,
                 "-startdate", start, "-enddate", end, "-extfile", ext, "-notext")
