"""The certificate authority devices trust so the gate can read LLM requests."""

from __future__ import annotations

from pathlib import Path

CA_FILE = "mitmproxy-ca-cert.pem"


def ensure_ca(confdir: Path) -> Path:
    """The CA certificate's path, creating the CA (as mitmproxy would) if it does not exist."""
    cert = confdir / CA_FILE
    if not cert.exists():
        from mitmproxy.certs import CertStore

        confdir.mkdir(parents=True, exist_ok=True)
        CertStore.from_store(str(confdir), "mitmproxy", 2048)
    return cert


def instructions(cert: Path) -> str:
    der = cert.with_name("mitmproxy-ca-cert.cer")
    return f"""CA certificate: {cert}
(also as DER for Windows/Android: {der})

Devices that trust it can be fully inspected (models, prompts, tokens). Devices that do not
should be set to `inspect: sni` in the rules: they are then decided by host name only.
Only LLM services are ever decrypted; all other traffic passes through untouched.

Install it (copy the file to the device first):
  Windows   double-click mitmproxy-ca-cert.cer -> Install Certificate -> Local Machine ->
            "Trusted Root Certification Authorities"; or, as administrator:
            certutil -addstore root mitmproxy-ca-cert.cer
  macOS     sudo security add-trusted-cert -d -p ssl -r trustRoot \\
              -k /Library/Keychains/System.keychain mitmproxy-ca-cert.pem
  iPhone/iPad  open the .pem in Safari (AirDrop/mail) -> Settings -> Profile Downloaded ->
            Install; then Settings -> General -> About -> Certificate Trust Settings -> enable
  Android   Settings -> Security -> Encryption & credentials -> Install a certificate ->
            CA certificate -> pick mitmproxy-ca-cert.cer (apps only trust it if they opt in;
            browsers and many apps will, some will not: use `inspect: sni` for those)
  Debian/Ubuntu  sudo cp {cert} /usr/local/share/ca-certificates/hearthgate.crt &&
            sudo update-ca-certificates
  Fedora    sudo cp {cert} /etc/pki/ca-trust/source/anchors/hearthgate.pem &&
            sudo update-ca-trust
  Firefox   Settings -> Privacy & Security -> Certificates -> View Certificates ->
            Authorities -> Import (Firefox keeps its own store)
  Python    export SSL_CERT_FILE / REQUESTS_CA_BUNDLE to a bundle that includes it

Keep the private key ({cert.parent / "mitmproxy-ca.pem"}) secret: whoever has it can
impersonate the LLM services to every device that trusts this CA."""
