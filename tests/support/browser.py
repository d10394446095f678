"""Load a page in headless Chromium: its DOM after load, a screenshot, and its network requests.

One Chromium run does all three (``--dump-dom``, ``--screenshot`` and ``--log-net-log``
work together in the new headless mode; about a second per page). The requests come
from Chromium's NetLog, the log of its network stack:

* every ``URL_REQUEST`` source is one request; its ``url`` (and the URL of each
  redirect) is in the params of ``REQUEST_ALIVE`` / ``URL_REQUEST_START_JOB``;
* ``URL_REQUEST_START_JOB`` also names the request's ``initiator``: an origin (``"null"``
  for a file:// page) when a frame of the page asked for it, ``"not an origin"`` when
  the browser itself did. The flags below switch off almost all of Chromium's own
  traffic; what is left (a Gaia ``ListAccounts`` call, an on-demand component update
  check in Chromium 156) is kept apart in ``browser_requests`` so that it cannot be
  mistaken for the page's, and a request with no initiator recorded counts as the page's;
* ``<link rel=preconnect>`` opens a connection without a request: an
  ``HTTP_STREAM_JOB_CONTROLLER`` with ``is_preconnect``; ``<link rel=dns-prefetch>``
  only resolves a name: a ``DNS_TRANSACTION``. Both are reported too.

The page's own file:// URL never appears (file:// loads bypass the network stack, which
also means file:// subresources are invisible here: check the DOM for those), and
``data:``, ``about:``, ``chrome:`` and ``blob:`` URLs are not network requests.

A load that the page's Content-Security-Policy blocks never reaches the network either;
Chromium says so on the console, which ``--enable-logging=stderr`` copies to stderr:
those URLs are in ``csp_blocked``, every console message in ``console``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import IN_CI, require_binary

__all__ = [
    "CHROMIUM_FLAGS",
    "NetActivity",
    "PageLoad",
    "console_messages",
    "csp_blocked",
    "load_page",
    "parse_netlog",
    "require_chromium",
]

CHROMIUM = "chromium"
INSTALL_HINT = "sudo apt-get install -y chromium"
TIMEOUT_S = 60.0

CHROMIUM_FLAGS: tuple[str, ...] = (
    "--headless=new",
    # as root in a container: no user namespaces for the sandbox, no GPU, a small /dev/shm
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # Chromium's own traffic: updates, sync, metrics, field trials, time queries, promos
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--metrics-recording-only",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-client-side-phishing-detection",
    "--disable-domain-reliability",
    "--no-pings",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-features=Translate,OptimizationHints,MediaRouter,NetworkTimeServiceQuerying",
    # a stable picture
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--mute-audio",
    # the page's console (CSP violations included) on stderr
    "--enable-logging=stderr",
    "--log-level=0",
)

NOT_NETWORK_SCHEMES = frozenset({"data", "about", "chrome", "blob"})
BROWSER_INITIATOR = "not an origin"
# on every run in a container: no D-Bus session bus; Debian's launcher trips on its /dev/shm test
STDERR_NOISE = ("dbus/", "D-Bus", "unexpected operator")
CONSOLE_LINE = re.compile(
    r'^\[[^\]\n]*:CONSOLE(?::\d+)?\] "(?P<message>.*?)", source: (?P<source>.*?) \(\d+\)$',
    re.MULTILINE | re.DOTALL,
)
QUOTED_URL = re.compile(r"'([a-z][a-z0-9+.-]*://[^']+)'")


def require_chromium() -> str:
    """Chromium's path: missing, it fails the test in CI (which must install it) and skips it elsewhere."""
    if IN_CI and shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is not installed; CI must install it: {INSTALL_HINT}")
    return require_binary(CHROMIUM)


@dataclass(frozen=True)
class NetActivity:
    """What a NetLog says went to the network, the page's apart from the browser's own."""

    requests: tuple[str, ...] = ()
    """URLs the page (any of its frames) requested, in order, once each."""
    preconnects: tuple[str, ...] = ()
    """Origins connected to ahead of any request (``<link rel=preconnect>``, navigations)."""
    dns_lookups: tuple[str, ...] = ()
    """Host names resolved, but not those only Chromium's own requests needed."""
    browser_requests: tuple[str, ...] = ()
    """URLs Chromium requested for itself (no initiator): not the page's doing."""

    @property
    def network_activity(self) -> list[str]:
        """Everything the page made go to the network; empty for a self-contained page."""
        return [
            *self.requests,
            *(f"preconnect {url}" for url in self.preconnects),
            *(f"dns {host}" for host in self.dns_lookups),
        ]


@dataclass(frozen=True)
class PageLoad(NetActivity):
    url: str = ""
    dom: str = ""
    """The DOM after the load event, serialized (``--dump-dom``)."""
    console: tuple[str, ...] = ()
    """The page's console messages."""
    csp_blocked: tuple[str, ...] = ()
    """URLs the page tried to load and its Content-Security-Policy refused (or the
    console message, where it names no URL)."""
    screenshot: Path = Path()
    """PNG of the viewport, ``width`` x ``height`` CSS pixels at scale 1."""
    netlog: Path = Path()
    stderr: str = ""
    seconds: float = 0.0
    """Wall-clock time of the Chromium run."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _read_netlog(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # a NetLog cut short (Chromium killed) lacks its closing "]}"; the format allows this fix
        data = json.loads(text.rstrip().rstrip(",") + "]}")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a NetLog (no top-level object)")
    return data


def parse_netlog(path: Path, page_url: str = "") -> NetActivity:
    """The network activity recorded in a NetLog file (``--log-net-log``)."""
    data = _read_netlog(path)
    constants = data["constants"]
    event_types = {number: name for name, number in constants["logEventTypes"].items()}
    source_types = {number: name for name, number in constants["logSourceType"].items()}

    request_urls: dict[int, list[str]] = {}
    initiators: dict[int, str] = {}
    preconnects: list[str] = []
    lookups: list[str] = []
    for event in data.get("events", []):
        params = event.get("params") or {}
        event_type = event_types.get(event.get("type"))
        source = event.get("source") or {}
        if source_types.get(source.get("type")) == "URL_REQUEST":
            urls = request_urls.setdefault(source.get("id", -1), [])
            if isinstance(params.get("url"), str):
                urls.append(params["url"])
            if event_type == "URL_REQUEST_START_JOB" and isinstance(params.get("initiator"), str):
                initiators[source.get("id", -1)] = params["initiator"]
        elif event_type == "HTTP_STREAM_JOB_CONTROLLER" and params.get("is_preconnect"):
            preconnects.append(str(params.get("url", "")))
        elif event_type == "DNS_TRANSACTION" and isinstance(params.get("hostname"), str):
            lookups.append(params["hostname"])

    def counts(url: str) -> bool:
        return bool(url) and url != page_url and urlsplit(url).scheme not in NOT_NETWORK_SCHEMES

    page: list[str] = []
    browser: list[str] = []
    for source_id, urls in request_urls.items():
        own = browser if initiators.get(source_id) == BROWSER_INITIATOR else page
        own.extend(url for url in urls if counts(url))
    browser_hosts = {urlsplit(url).hostname for url in browser}
    page_hosts = {urlsplit(url).hostname for url in page}
    return NetActivity(
        requests=_unique(page),
        preconnects=_unique(url for url in preconnects if counts(url)),
        dns_lookups=_unique(
            host for host in lookups if host not in browser_hosts or host in page_hosts
        ),
        browser_requests=_unique(browser),
    )


def console_messages(stderr: str) -> tuple[str, ...]:
    """The page's console messages in Chromium's log (``--enable-logging=stderr``)."""
    return tuple(match["message"] for match in CONSOLE_LINE.finditer(stderr))


def csp_blocked(console: Iterable[str]) -> tuple[str, ...]:
    """What the page's Content-Security-Policy refused, from its console messages."""
    blocked = []
    for message in console:
        if "Content Security Policy" in message:
            url = QUOTED_URL.search(message)
            blocked.append(url.group(1) if url else message)
    return _unique(blocked)


def _stderr_tail(stderr: str, lines: int = 40) -> str:
    kept = [line for line in stderr.splitlines() if not any(n in line for n in STDERR_NOISE)]
    return "\n".join(kept[-lines:]) or "(nothing but known noise)"


def load_page(
    html_path: Path,
    out_dir: Path,
    *,
    width: int = 1280,
    height: int = 900,
    timeout: float = TIMEOUT_S,
) -> PageLoad:
    """Open ``html_path`` in headless Chromium; write the screenshot, NetLog and profile under ``out_dir``."""
    chromium = require_chromium()
    out_dir.mkdir(parents=True, exist_ok=True)
    url = html_path.resolve().as_uri()
    screenshot = out_dir / "screenshot.png"
    netlog = out_dir / "netlog.json"
    profile = out_dir / "chromium-profile"
    for stale in (screenshot, netlog):
        stale.unlink(missing_ok=True)
    shutil.rmtree(profile, ignore_errors=True)
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={screenshot}",
        f"--log-net-log={netlog}",
        "--net-log-capture-mode=Everything",
        "--dump-dom",
        url,
    ]
    shown = " ".join(command)
    started = time.monotonic()
    # its own session, so that a hung run is killed with every process it started
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            _, stderr = process.communicate()
            raise AssertionError(
                f"chromium did not finish loading {url} within {timeout:g}s\n$ {shown}\n"
                f"chromium stderr (tail):\n{_stderr_tail(stderr or '')}"
            ) from exc
    result = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    seconds = time.monotonic() - started

    def failed(what: str) -> AssertionError:
        return AssertionError(
            f"{what} (chromium exit status {result.returncode}, {seconds:.1f}s)\n$ {shown}\n"
            f"chromium stderr (tail):\n{_stderr_tail(result.stderr)}"
        )

    if result.returncode != 0:
        raise failed(f"chromium failed to load {url}")
    if "<html" not in result.stdout.lower():
        raise failed(f"chromium printed no DOM for {url}")
    if not screenshot.is_file() or screenshot.stat().st_size == 0:
        raise failed(f"chromium wrote no screenshot to {screenshot}")
    if not netlog.is_file():
        raise failed(f"chromium wrote no NetLog to {netlog}")
    try:
        activity = parse_netlog(netlog, url)
    except (ValueError, KeyError) as exc:
        raise failed(f"unreadable NetLog {netlog}: {exc!r}") from exc
    console = console_messages(result.stderr)
    return PageLoad(
        requests=activity.requests,
        preconnects=activity.preconnects,
        dns_lookups=activity.dns_lookups,
        browser_requests=activity.browser_requests,
        url=url,
        dom=result.stdout,
        console=console,
        csp_blocked=csp_blocked(console),
        screenshot=screenshot,
        netlog=netlog,
        stderr=result.stderr,
        seconds=seconds,
    )
