"""The OpenID Connect provider of the -p tests (npm oidc-provider from
tests/oidc, serving Keycloak's paths under /realms/Atlas over https with a
certificate made at test start), and a node started with -p."""

import os
import signal
import subprocess

import harness
from harness import wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
OIDC_DIR = os.path.join(HERE, "..", "oidc")
PASSWORDS = {"alice": "alice-test-password", "bob": "bob-test-password",
             "admin": "admin-test-password"}


def npm_ci():
    """Installs the pinned provider (npm ci) unless this lock file is installed."""
    lock = os.path.join(OIDC_DIR, "package-lock.json")
    stamp = os.path.join(OIDC_DIR, "node_modules", ".package-lock.json")
    if os.path.exists(stamp) and os.path.exists(os.path.join(OIDC_DIR, "node_modules", "oidc-provider")) \
            and os.path.getmtime(stamp) >= os.path.getmtime(lock):
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR, check=True,
                   timeout=300, capture_output=True)


class Provider:
    """The OpenID provider, on its own port, with a signing key made now."""

    def __init__(self, directory, port, kid):
        self.dir, self.port, self.kid = directory, port, kid
        self.key = os.path.join(directory, f"signing-{kid}.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                        "rsa_keygen_bits:2048", "-out", self.key], check=True, timeout=60,
                       capture_output=True)
        self.issuer = f"https://127.0.0.1:{port}/realms/Atlas"
        self.log = open(os.path.join(directory, f"provider-{kid}.log"), "wb")
        self.proc = subprocess.Popen(
            ["node", os.path.join(OIDC_DIR, "provider.mjs"), "--port", str(port),
             "--cert", os.path.join(directory, "tls-cert.pem"),
             "--key", os.path.join(directory, "tls-key.pem"),
             "--signing-key", self.key, "--kid", kid],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self.ready, 30, "the OpenID provider to listen")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("provider exited: " + self.read_log())
        return f"ready {self.issuer}" in self.read_log()

    def read_log(self):
        with open(os.path.join(self.dir, f"provider-{self.kid}.log"), errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def make_tls_certificate(directory):
    """tls-cert.pem and tls-key.pem in `directory`, for https://127.0.0.1."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", os.path.join(directory, "tls-key.pem"),
                    "-out", os.path.join(directory, "tls-cert.pem"), "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, timeout=60, capture_output=True)


def auth_config(provider, directory):
    """The atlas.config.yaml `auth:` section trusting `provider`."""
    return (f"auth:\n  issuer: {provider.issuer}\n"
            f"  ca_file: {os.path.join(directory, 'tls-cert.pem')}\n  jwks_refresh_s: 1\n")


def start_with_p(n):
    """Starts the harness Node `n` as `atlas-server start -p`."""
    n.log = open(n.home + "/node.log", "ab")
    n.proc = subprocess.Popen([harness.SERVER, "start", "-p", "--foreground"], env=n.env,
                              stdout=n.log, stderr=subprocess.STDOUT, start_new_session=True)
    wait_until(n.healthy, 30, "atlas-server -p to serve")
    n.write_submission_config()
