"""tests/support/browser.py: headless Chromium sees a page's requests; report.html makes none."""

from __future__ import annotations

import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gameday.reports.html import render_html
from gameday.reports.model import (
    AlertTransition,
    ExpectationResult,
    FaultRecord,
    LoadPoint,
    RunReport,
    ScenarioReport,
)
from tests.support.browser import load_page

T0 = 1_800_000_000.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (the first, right after the signature)."""
    header = path.read_bytes()[:24]
    assert header[:8] == PNG_SIGNATURE, f"{path} is not a PNG: starts {header[:8]!r}"
    assert header[12:16] == b"IHDR", f"{path}: first chunk is {header[12:16]!r}, not IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# one red pixel, for the server to answer image requests with something real
PIXEL_PNG = (
    PNG_SIGNATURE
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
    + _chunk(b"IEND", b"")
)


@dataclass
class HitServer:
    port: int
    hits: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def hit_server() -> Iterator[HitServer]:
    """A local HTTP server that records the path of every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PIXEL_PNG)))
            self.end_headers()
            self.wfile.write(PIXEL_PNG)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HitServer(port=server.server_address[1], hits=hits)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_netlog_shows_a_request_for_an_external_resource(
    tmp_path: Path, hit_server: HitServer
) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>external</title></head><body>"
        f'<p>an image from elsewhere:</p><img src="{hit_server.url("/x.png")}" alt="x">'
        f'<div style="width:10px;height:10px;background:url({hit_server.url("/bg.png")})"></div>'
        "</body></html>",
        encoding="utf-8",
    )
    load = load_page(page, tmp_path / "browser")

    # ground truth first: the server was asked, so there is something to detect
    assert "/x.png" in hit_server.hits and "/bg.png" in hit_server.hits, hit_server.hits
    assert hit_server.url("/x.png") in load.requests, (load.requests, load.browser_requests)
    assert hit_server.url("/bg.png") in load.requests, (load.requests, load.browser_requests)
    assert not set(load.requests) & set(load.browser_requests)
    assert load.url not in load.requests
    assert "<img" in load.dom


def test_the_netlog_shows_a_preconnect_that_fetches_nothing(
    tmp_path: Path, hit_server: HitServer
) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><link rel="preconnect" href="{hit_server.url("/")}"></head>'
        "<body><p>nothing to fetch</p></body></html>",
        encoding="utf-8",
    )
    load = load_page(page, tmp_path / "browser")

    assert load.requests == ()
    assert f"preconnect {hit_server.url('/')}" in load.network_activity, load


def test_a_load_refused_by_the_pages_csp_is_reported_though_it_never_leaves(
    tmp_path: Path, hit_server: HitServer
) -> None:
    page = tmp_path / "page.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:\"></head>"
        f'<body><img src="{hit_server.url("/blocked.png")}" alt="blocked"></body></html>',
        encoding="utf-8",
    )
    load = load_page(page, tmp_path / "browser")

    assert hit_server.hits == []
    assert load.network_activity == []
    assert load.csp_blocked == (hit_server.url("/blocked.png"),), load.console


def report_with_everything() -> RunReport:
    load = [
        LoadPoint(
            t=T0 + s,
            users=8,
            rps=0.0 if 12 <= s < 20 else 40.0 + s % 5,
            error_ratio=1.0 if 12 <= s < 20 else 0.0,
            requests=0 if 12 <= s < 20 else 40,
            failures=40 if 12 <= s < 20 else 0,
            p50_ms=None if 12 <= s < 20 else 30.0,
            p95_ms=None if 12 <= s < 20 else 80.0 + s,
            ttft_p95_ms=None if 12 <= s < 20 else 20.0,
        )
        for s in range(0, 40, 2)
    ]
    scenario = ScenarioReport(
        name="port-conflict",
        source="scenarios/port-conflict.yaml",
        tier="local",
        runbook="NETWORK001",
        description="another process holds the serving port",
        outcome="failed",
        reason="1 expectation(s) failed",
        started_at=T0,
        finished_at=T0 + 40,
        time_to_detect_s=4.0,
        phases={"baseline": T0, "fault": T0 + 10, "recover": T0 + 22},
        faults=[
            FaultRecord(
                name="hold-port",
                type="port-conflict",
                description="bind :8000 first",
                runbook="NETWORK001",
                applied_at=T0 + 10,
                reverted_at=T0 + 22,
                offset_s=10.0,
                details={"port": "8000"},
            )
        ],
        alerts=[
            AlertTransition(
                at=T0 + 12, alert="InferenceTargetDown", source="prometheus", state="pending"
            ),
            AlertTransition(
                at=T0 + 14, alert="InferenceTargetDown", source="prometheus", state="firing"
            ),
            AlertTransition(
                at=T0 + 15, alert="InferenceTargetDown", source="alertmanager", state="active"
            ),
            AlertTransition(
                at=T0 + 26, alert="InferenceTargetDown", source="prometheus", state="resolved"
            ),
        ],
        load=load,
        expectations=[
            ExpectationResult(
                phase="expect",
                index=0,
                kind="alert",
                description="alert InferenceTargetDown firing",
                outcome="passed",
                deadline_s=30.0,
                met_after_s=4.0,
                evidence=["+4.0s prometheus: firing"],
            ),
            ExpectationResult(
                phase="recover",
                index=0,
                kind="load",
                description="error ratio < 1% for 10s",
                outcome="failed",
                deadline_s=15.0,
                evidence=['error ratio 0.12 > 0.01 & "p95" 310 ms', "ünïcödé ✓ <no markup>"],
            ),
        ],
    )
    return RunReport(
        run_id="20260101-000000-abcd",
        outcome="failed",
        exit_code=1,
        version="0.1.0",
        host="ci-runner",
        started_at=T0,
        finished_at=T0 + 41,
        scenarios=[scenario],
    )


def test_report_html_is_self_contained_and_renders(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(report_with_everything()), encoding="utf-8")
    load = load_page(page, tmp_path / "browser", width=1200, height=1500)

    assert load.network_activity == [], (
        f"report.html reached for the network: {load.network_activity}"
    )
    assert load.csp_blocked == (), f"report.html tried to load, and its CSP refused: {load.console}"
    svg = re.search(r"<svg\b.*?</svg>", load.dom, re.DOTALL)
    assert svg, "no <svg> chart in the DOM after load"
    assert "<path" in svg.group(0) and "hold-port" in svg.group(0), (
        "the chart has no series or fault"
    )
    assert "<table" in load.dom, "no <table> in the DOM after load"
    assert "error ratio &lt; 1% for 10s" in load.dom
    assert png_size(load.screenshot) == (1200, 1500)
