"""Headless Debian Chromium driven by Selenium, for the browser tests (`make browser-tools` installs it).

Nothing is downloaded at run time: the browser and its driver are Debian's (/usr/bin/chromium,
/usr/bin/chromedriver), named explicitly so that Selenium Manager never runs (SE_OFFLINE=true in case it would).

TLS stays on and verified. The servers under test present a certificate issued by the local CA
(hub.devstack.tls), which Chromium does not know; rather than `--ignore-certificate-errors` (which would accept
any certificate, hiding real TLS mistakes), the server's own certificate is pinned by its public key with
`--ignore-certificate-errors-spki-list` (honoured only together with `--user-data-dir`, which is always given).
Only a server holding that key gets through; every other certificate is still verified as usual.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"


def spki_pin(cert_pem: Path) -> str:
    """base64(sha256(SubjectPublicKeyInfo DER)) of the first certificate in `cert_pem`: Chromium's SPKI pin.

    A CA certificate is refused: Chromium matches the pins against the chain the server *sends*, unverified, so a
    pinned CA key would let any server through that merely includes the (public) CA certificate in its chain.
    """
    cert = x509.load_pem_x509_certificates(cert_pem.read_bytes())[0]
    with contextlib.suppress(x509.ExtensionNotFound):
        if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise ValueError(f"{cert_pem}: a CA certificate; pass the server's own certificate")
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


class _Chromium(webdriver.Chrome):
    """A Chrome driver that also deletes its temporary profile when it quits."""

    profile: Path

    def quit(self) -> None:
        try:
            super().quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)


def chromium_driver(trusted_cert: Path, window: tuple[int, int] = (1280, 900)) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile that trusts the server certificate `trusted_cert` (PEM) by its
    public key, and nothing else beyond the system's trust. The caller quits it (or uses `browser`)."""
    os.environ["SE_OFFLINE"] = "true"  # belt and braces: the explicit paths below already skip Selenium Manager
    pin = spki_pin(trusted_cert)
    profile = Path(tempfile.mkdtemp(prefix="hub-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        f"--user-data-dir={profile}",
        "--no-sandbox",  # the tests run as root, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",  # /dev/shm is small in containers
        "--disable-gpu",
        "--disable-component-update",  # no downloads at run time
        "--lang=zh-CN",
        f"--window-size={window[0]},{window[1]}",
        f"--ignore-certificate-errors-spki-list={pin}",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    try:
        driver = _Chromium(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.profile = profile
    return driver


@contextlib.contextmanager
def browser(trusted_cert: Path, window: tuple[int, int] = (1280, 900)) -> Iterator[webdriver.Chrome]:
    """`chromium_driver`, always quit afterwards (even when the test fails), so no browser outlives its test."""
    driver = chromium_driver(trusted_cert, window)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """Saves the visible page as test-output/screenshots/<name>.png (git-ignored) for a human to look at."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "screenshot"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{safe}.png"
    if not driver.save_screenshot(str(path)):
        raise RuntimeError(f"Chromium could not save the screenshot {path}")
    return path
