"""Makes gateway/demo/ad.webm, the demo's shoppable video, with Chromium itself.

A canvas animation recorded by MediaRecorder (VP8, 320x180, 15 fps, 6 s): small,
playable in headless Chromium, no ffmpeg needed. Run once; the file is committed:
    python tests/browser/make_demo_video.py
"""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import sync_playwright

OUT = Path(__file__).resolve().parents[2] / "gateway" / "demo" / "ad.webm"
SECONDS = 6

RECORD = """async (seconds) => {
  const canvas = document.createElement('canvas')
  canvas.width = 320; canvas.height = 180
  document.body.appendChild(canvas)
  const g = canvas.getContext('2d')
  const stream = canvas.captureStream(15)
  const rec = new MediaRecorder(stream,
    { mimeType: 'video/webm;codecs=vp8', videoBitsPerSecond: 120000 })
  const chunks = []
  rec.ondataavailable = (e) => chunks.push(e.data)
  const start = performance.now()
  const draw = () => {
    const t = (performance.now() - start) / 1000
    g.fillStyle = '#0a7a3e'; g.fillRect(0, 0, 320, 180)
    g.fillStyle = '#f4b942'
    g.beginPath(); g.arc(60 + (t * 45) % 200, 90 + 30 * Math.sin(t * 3), 28, 0, 7); g.fill()
    g.fillStyle = '#fff'; g.font = 'bold 26px sans-serif'
    g.fillText('Sparkling lime', 150, 60); g.font = '18px sans-serif'
    g.fillText('2 for $5 this week', 150, 140)
    if (t < seconds) requestAnimationFrame(draw)
  }
  const done = new Promise((r) => (rec.onstop = r))
  rec.start(); draw()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  rec.stop(); await done
  const buf = new Uint8Array(await new Blob(chunks).arrayBuffer())
  let s = ''; for (const b of buf) s += String.fromCharCode(b)
  return btoa(s)
}"""


def main() -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_content("<body></body>")
        data = base64.b64decode(page.evaluate(RECORD, SECONDS))
        browser.close()
    OUT.write_bytes(data)
    print(f"{OUT}: {len(data)} bytes")


if __name__ == "__main__":
    main()
