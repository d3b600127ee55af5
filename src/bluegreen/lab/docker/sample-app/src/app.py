"""The lab's sample app: an HTTP service on port 3001 that says which host it runs on.

GET /health (or /api/health) -> {"status", "app", "color", "commit", "started_at"} (503 when
settings.json says unhealthy).
GET /       -> a page with colour, commit and the host's role from .env.display (if present).
"""

import html
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent  # the dist/ directory
APP_DIR = HERE.parent
COLOR = os.environ.get("APP_COLOR", "unknown")
NAME = os.environ.get("APP_NAME", "jw-attendant")  # one checkout runs as several lab apps
STARTED_AT = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
BUILD = json.loads((HERE / "build-info.json").read_text())
SETTINGS = json.loads((HERE / "settings.json").read_text())


def env_display() -> dict[str, str]:
    """KEY=VALUE lines written by bluegreen after each switch (the environment indicator)."""
    path = APP_DIR / ".env.display"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip().strip('"')
    return values


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.split("?")[0] in ("/health", "/api/health"):
            healthy = SETTINGS.get("healthy", True)
            body = {
                "status": "ok" if healthy else "failing",
                "app": NAME,
                "color": COLOR,
                "commit": BUILD["commit"],
                "started_at": STARTED_AT,
            }
            self.reply(200 if healthy else 503, "application/json", json.dumps(body))
        elif self.path.split("?")[0] == "/":
            display = env_display()
            page = (HERE / "index.html").read_text()
            page = page.replace("{{color}}", html.escape(COLOR))
            page = page.replace("{{role}}", html.escape(display.get("ROLE", "unknown")))
            page = page.replace("{{since}}", html.escape(display.get("SINCE", "")))
            self.reply(200, "text/html; charset=utf-8", page)
        else:
            self.reply(404, "text/plain", "not found\n")

    def reply(self, status: int, content_type: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", COLOR)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        print(f"{self.address_string()} {format % args}", flush=True)


if __name__ == "__main__":
    port = int(os.environ.get("APP_PORT", "3001"))
    print(f"{NAME} {BUILD['commit'][:12]} ({COLOR}) listening on :{port}", flush=True)
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104
