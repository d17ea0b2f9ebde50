"""A person's view: headless Chromium logs into flask, opens /connect and sees the tenant's QR code.
The picture on the page, decoded by zxing-cpp, must be the very pairing string node_service serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
         "--no-first-run", "--disable-component-update", "--disable-sync"]  # fmt: skip


DECODE = """
import sys, zxingcpp
from PIL import Image
found = zxingcpp.read_barcodes(Image.open(sys.argv[1]))
# zxing-cpp can report one symbol twice (seen once in CI: two results for one <img>); one code means one text
texts = sorted({(b.format == zxingcpp.BarcodeFormat.QRCode, b.text) for b in found})
assert len(texts) == 1 and texts[0][0], [(str(b.format), b.text[:40], str(b.position)) for b in found]
sys.stdout.write(texts[0][1])
"""


# What the page looks like to the browser: its stylesheet loaded (from the app: the CSP allows no other), and the
# body styled by it rather than by Chromium's defaults.
STYLED = """(() => {
  const body = getComputedStyle(document.body);
  const sheet = [...document.styleSheets].some(s => s.href && new URL(s.href).pathname === '/static/app.css'
                                                  && s.cssRules.length > 0);
  return {sheet, background: body.backgroundColor, margin: body.marginTop};
})()"""


def decode_qr(png: bytes, folder: Path) -> str:
    # In a child process: zxing-cpp's bindings print reference-leak noise at interpreter exit.
    path = folder / "qr.png"
    path.write_bytes(png)
    result = subprocess.run([sys.executable, "-c", DECODE, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def up_with_a_login(deploy, whatsapp_env: str):  # type: ignore[no-untyped-def]
    """A shared environment with tenant 1, node's sandbox tuned by `whatsapp_env`, up, with the login ana."""
    deployment = deploy("{kind: shared}", ["1"])
    overlay = deployment.spec.parent / "environments" / "e2e.yaml"
    overlay.write_text(f"services:\n  whatsapp:\n    env: {whatsapp_env}\n")
    assert deployment.cli("up", deployment.env, "--timeout", "90") == 0
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "DATABASE_URL": deployment.database_url}
    subprocess.run(
        [sys.executable, "-m", "flask_service", "create-user", "--username", "ana", "--password", "s3cret-pass",
         "--tenant", "1"],
        cwd=deployment.spec.parent, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return deployment, deployment.service_url("web")


def test_connect_page_shows_the_real_qr(deploy, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is required (scripts/bootstrap --dev installs it)")
    from playwright.sync_api import sync_playwright

    # Keep one QR long enough to compare what the browser shows with what node serves.
    deployment, web = up_with_a_login(deploy, "{SANDBOX_QR_TTL_MS: '600000'}")

    # Kept for people to look at where TEST_ARTIFACTS names a folder (scripts/test sets it).
    artifacts = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{web}/login")
            page.fill("#username", "ana")
            page.fill("#password", "s3cret-pass")
            page.click("#login-submit")
            page.goto(f"{web}/connect")
            qr = page.locator("img#qr")
            qr.wait_for(state="visible", timeout=20_000)
            page.wait_for_function("document.querySelector('img#qr').naturalWidth > 0", timeout=20_000)
            page.screenshot(path=str(artifacts / "connect.png"), full_page=True)
            picture = qr.screenshot()
            # The app's stylesheet is applied (not the browser's defaults: white background, 8px margin).
            assert page.evaluate(STYLED) == {"sheet": True, "background": "rgb(245, 247, 246)", "margin": "0px"}

            # A phone: the page fits the screen (no sideways scrolling) and the QR code still fits on it.
            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_function("document.documentElement.clientWidth === 390")
            page.screenshot(path=str(artifacts / "connect-phone.png"), full_page=True)
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            box = qr.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
            page.set_viewport_size({"width": 300, "height": 640})  # narrower than the code: it scales down
            page.wait_for_function("document.documentElement.clientWidth === 300")
            assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
            narrow = qr.bounding_box()
            assert narrow is not None and narrow["width"] < 264 and narrow["x"] + narrow["width"] <= 300, narrow
        finally:
            browser.close()

    decoded = decode_qr(picture, tmp_path)

    key = deployment.secrets()["WHATSAPP_API_KEY"]
    served = httpx.get(f"{deployment.service_url('whatsapp')}/tenants/1/qr", headers={"X-Api-Key": key}, timeout=10)
    assert served.status_code == 200
    assert decoded == served.json()["qr"]
    assert (artifacts / "connect.png").stat().st_size > 0
    assert (artifacts / "connect-phone.png").stat().st_size > 0


def test_expired_code_renew_simulate_scan_and_unlink(deploy, tmp_path):
    """A person on /connect is never left without a code: the page renews an expired code by itself a
    bounded number of times, then offers "Get a new code"; "Simulate scan" links (development + sandbox),
    "Unlink WhatsApp" logs out and a new code appears."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is required (scripts/bootstrap --dev installs it)")
    from playwright.sync_api import expect, sync_playwright

    # One code per pairing attempt, living 5 s: expiry comes quickly and a code never rotates under the test.
    deployment, web = up_with_a_login(deploy, "{SANDBOX_QR_TTL_MS: '5000', SANDBOX_QR_MAX: '1'}")
    node = httpx.Client(
        base_url=deployment.service_url("whatsapp"),
        headers={"X-Api-Key": deployment.secrets()["WHATSAPP_API_KEY"]},
        timeout=10,
    )

    with sync_playwright() as pw, node:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            page = browser.new_page()
            page.goto(f"{web}/login")
            page.fill("#username", "ana")
            page.fill("#password", "s3cret-pass")
            page.click("#login-submit")
            page.goto(f"{web}/connect")
            section, qr = page.locator("#connect"), page.locator("img#qr")
            qr.wait_for(state="visible", timeout=20_000)
            page.wait_for_function("document.querySelector('img#qr').naturalWidth > 0", timeout=20_000)
            first = decode_qr(qr.screenshot(), tmp_path)
            assert page.evaluate("document.visibilityState") == "visible"

            # Three codes expire (the first and two renewals the page asked for by itself), then it waits.
            renew = page.locator("#renew")
            renew.wait_for(state="visible", timeout=60_000)
            expect(section).to_have_attribute("data-state", "qr_expired")
            expect(section).to_have_attribute("data-auto-renewals", "2")
            expect(page.locator("#status")).to_contain_text("expired")
            expect(page.locator("#state-badge")).to_have_text("Code expired")  # connect.js relabels the badge
            assert node.get("/tenants/1/status").json()["connect_attempts"] == 3, "auto-renewal is bounded"
            assert node.get("/tenants/1/qr").status_code == 410

            renew.click()
            expect(section).to_have_attribute("data-state", "qr", timeout=20_000)
            page.wait_for_function("document.querySelector('img#qr').naturalWidth > 0", timeout=20_000)
            picture = qr.screenshot()
            served = node.get("/tenants/1/qr")
            assert served.status_code == 200, served.text

            page.click("#simulate-scan")
            expect(section).to_have_attribute("data-state", "connected", timeout=20_000)
            expect(page.locator("#status")).to_have_text("WhatsApp connected.")
            expect(page.locator("#state-badge")).to_have_text("Connected")
            expect(page.locator("#state-badge")).to_have_attribute("data-tone", "ok")
            assert node.get("/tenants/1/status").json()["state"] == "connected"

            page.click("#unlink")
            page.wait_for_url(f"{web}/connect", timeout=20_000)
            expect(page.locator(".notice")).to_contain_text("WhatsApp unlinked")
            qr.wait_for(state="visible", timeout=20_000)
            page.wait_for_function("document.querySelector('img#qr').naturalWidth > 0", timeout=20_000)
            after_unlink = decode_qr(qr.screenshot(), tmp_path)
            assert node.get("/tenants/1/status").json()["me"] is None, "unlinked: no paired device left"
        finally:
            browser.close()

    fresh = decode_qr(picture, tmp_path)
    assert fresh == served.json()["qr"], "the page showed the code node serves"
    assert fresh != first and after_unlink not in (first, fresh)
