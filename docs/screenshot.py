"""Render the Dagster UI's asset graph to a PNG for the README (docs/asset-graph.png).

    python docs/screenshot.py --url http://127.0.0.1:3000/asset-groups --out docs/asset-graph.png
    python docs/screenshot.py --serve --out docs/asset-graph.png   # runs its own webserver
    python docs/screenshot.py --serve --page /overview/backfills docs/ui/backfills.png   # and other pages

Why not `chromium --screenshot`: the UI is a single-page app that draws the graph only after
its GraphQL queries return, so a fixed time budget captures a spinner or a half-drawn graph
depending on the machine, and the graph opens with its groups collapsed and a newsletter
dialog on top. This drives headless Chromium over the DevTools protocol instead: it skips the
dialog, hides the side panels, expands every asset group, zooms out until the whole lineage
fits, waits until the drawing stops changing, and captures it.

`--serve` starts the Dagster webserver read-only on a free 127.0.0.1 port with this environment's
DAGSTER_HOME and TARMAC_DATA_DIR, and always stops it and its code server afterwards. Not
`dagster dev`: its daemon would run the sensors, which launch runs on the instance (and turn
nodes red) while the picture is taken. Needs Chromium (`apt-get install chromium`, or
CHROMIUM=/path/to/chrome) and `websockets`, which dagster-webserver already installs.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
         "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0"]
SKIP_DIALOG = "localStorage.setItem('communityNux', '\"1\"')"  # Dagster's "join the community" dialog
CLICK = "[...document.querySelectorAll('button [aria-label=\"%s\"]')].map(i => i.closest('button').click()).length"
# The graph's node count, collapsed groups, whether all nodes are inside the visible part of the pane
# (below its toolbar, left of its zoom buttons), and a signature that changes while anything is drawn.
STATE = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const nodes = q('[class*="AssetNode_assetNodeContainer"],[class*="AssetNode_minimalAssetNodeBox"],[class*="GroupNode_"]');
  const svg = nodes.length && nodes[0].closest('svg');
  let pane = svg;
  while (pane && getComputedStyle(pane).overflow !== 'hidden') pane = pane.parentElement;
  if (!pane) return null;
  const v = pane.getBoundingClientRect(), b = [1e9, 1e9, -1e9, -1e9];
  const top = Math.max(v.top, ...q('button').filter(e => !svg.contains(e)).map(e => e.getBoundingClientRect())
    .filter(r => r.left >= v.left && r.top < v.top + 80).map(r => r.bottom + 8));
  for (const r of nodes.map(e => e.getBoundingClientRect()))
    [b[0], b[1], b[2], b[3]] = [Math.min(b[0], r.left), Math.min(b[1], r.top), Math.max(b[2], r.right), Math.max(b[3], r.bottom)];
  return {nodes: nodes.length, collapsed: q('[class*="CollapsedGroupNode_collapsedGroupNodeContainer"]').length,
          fits: b[0] >= v.left && b[1] >= top && b[2] <= v.right - 56 && b[3] <= v.bottom,
          sig: [svg.outerHTML.length, ...b.map(Math.round)].join()};
})()"""


# Any other page: its text and the number of elements, which stop changing once its queries have
# returned; loading spinners still on screen.
PAGE_STATE = """(() => ({text: document.body.innerText.length, elements: document.getElementsByTagName('*').length,
  loading: document.querySelectorAll('[class*="Spinner"],[class*="spinner"],[class*="Skeleton"]').length}))()"""


# Click the visible element whose text is exactly this (a tab, a button); the last one on the page
# when there are several.
CLICK_TEXT = """(() => { const t = %s;
  const hits = [...document.querySelectorAll('button,a,[role=tab],span,div')].filter(e => e.innerText && e.innerText.trim() === t
    && e.offsetParent !== null && ![...e.children].some(c => c.innerText && c.innerText.trim() === t));
  const hit = hits[hits.length - 1];  // the innermost panel's (a check's tab, not its asset's)
  if (hit) { (hit.closest('button,a,[role=tab]') || hit).click(); return true; } return false; })()"""


def shoot(chromium: str, url: str, out: Path, width: int, height: int, timeout: float, graph: bool = True,
          clicks: tuple[str, ...] = ()) -> None:
    from websockets.sync.client import connect

    deadline, ids = time.monotonic() + timeout, itertools.count(1)

    def cdp(method: str, **params):  # just enough of the DevTools protocol: call a method, skip events
        n = next(ids)
        ws.send(json.dumps({"id": n, "method": method, "params": params}))
        while (msg := json.loads(ws.recv(timeout=60))).get("id") != n:
            pass
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    def js(expression: str):
        return cdp("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)["result"].get("value")

    def settle() -> dict:  # the graph has nodes and has not changed for 2 s
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            state = js(STATE)
            if state and state["nodes"] and state != last:
                last, since = state, time.monotonic()
            elif state and state == last and time.monotonic() - since > 2:
                return state
            time.sleep(0.25)
        sys.exit(f"screenshot: no asset graph rendered at {url} within {timeout:.0f} s (right page? code location loaded?)")

    def settle_page() -> None:  # the page's text and elements have not changed for 3 s, no spinner left
        last, since = None, time.monotonic()
        while time.monotonic() < deadline:
            state = js(PAGE_STATE)
            if state != last:
                last, since = state, time.monotonic()
            elif state and not state["loading"] and time.monotonic() - since > 3:
                return
            time.sleep(0.25)
        sys.exit(f"screenshot: {url} did not finish loading within {timeout:.0f} s")

    def save(png: bytes) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(png)
        print(f"screenshot: {url} -> {out} ({len(png) // 1024} KiB)")

    with tempfile.TemporaryDirectory(prefix="screenshot-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile, "DevToolsActivePort")  # Chromium writes its DevTools port here
            while not (port_file.exists() and port_file.read_text().strip()):
                if browser.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"screenshot: {chromium} exited or never opened its DevTools port")
                time.sleep(0.1)
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port_file.read_text().split()[0]}/json/list"))
            with connect(next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page"), max_size=None) as ws:
                cdp("Page.enable")
                cdp("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
                cdp("Page.addScriptToEvaluateOnNewDocument", source=SKIP_DIALOG)
                cdp("Page.navigate", url=url)
                if not graph:
                    settle_page()
                    for text in clicks:  # a tab the URL cannot open (a check's Partitions tab)
                        if not js(CLICK_TEXT % json.dumps(text)):
                            sys.exit(f"screenshot: nothing to click named {text!r} on {url}")
                        settle_page()
                    js("document.fonts.ready.then(() => true)")
                    png = base64.b64decode(cdp("Page.captureScreenshot", format="png")["data"])
                    return save(png)
                state = settle()
                js(CLICK % "panel_show_right")  # hide the navigation and the asset-group sidebar
                if state["collapsed"]:  # Alt+E, the graph's own "expand all groups" shortcut
                    for kind in ("keyDown", "keyUp"):
                        cdp("Input.dispatchKeyEvent", type=kind, modifiers=1, key="e", code="KeyE", windowsVirtualKeyCode=69)
                    end = min(deadline, time.monotonic() + 10)
                    while (js(STATE) or {}).get("collapsed") and time.monotonic() < end:
                        time.sleep(0.25)
                for _ in range(15):  # the graph opens zoomed to fit its width only
                    state = settle()
                    if state["fits"] or not js(CLICK % "zoom_out"):
                        break
                if state["collapsed"] or not state["fits"] or js("!!document.querySelector('[role=dialog]')"):
                    print("screenshot: warning: graph not fully expanded, not fully in view, or under a dialog", file=sys.stderr)
                js("document.fonts.ready.then(() => true)")
                png = base64.b64decode(cdp("Page.captureScreenshot", format="png")["data"])
        finally:
            browser.terminate()
            browser.wait()
    save(png)


def serve_and_shoot(chromium: str, args: argparse.Namespace) -> None:
    """Serve the project's UI, read-only, on a free 127.0.0.1 port, shoot it, and always stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port), "--read-only"]
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parent.parent, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + args.timeout
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = b"".join(log.readlines()[-20:]).decode(errors="replace")
                    sys.exit(f"screenshot: dagster-webserver did not come up on port {port}:\n{tail}")
                time.sleep(0.5)
        shoot(chromium, f"http://127.0.0.1:{port}{args.path}", args.out, args.width, args.height, args.timeout)
        for page, out in args.page or []:
            path, *clicks = page.split("|")
            shoot(chromium, f"http://127.0.0.1:{port}{path}", Path(out), args.width, args.height, args.timeout,
                  graph=False, clicks=tuple(clicks))
    finally:  # SIGTERM, then SIGKILL whatever is left of the process group (the code server)
        server.terminate()
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                server.poll()
                os.killpg(server.pid, 0)  # raises once the whole group is gone
            except ProcessLookupError:
                break
            time.sleep(0.2)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="asset graph page of a running Dagster UI, e.g. http://127.0.0.1:3000/asset-groups")
    where.add_argument("--serve", action="store_true", help="serve this project's UI (read-only) and shoot that")
    p.add_argument("--path", default="/asset-groups", help="page to shoot with --serve (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("docs/asset-graph.png"))
    p.add_argument("--page", nargs=2, action="append", metavar=("PATH", "OUT"),
                   help="with --serve, also shoot this page of the UI (any page: a check, a run, the backfills) "
                        "once it has loaded; PATH|Text clicks the element named Text first (a tab); repeatable")
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=90, help="seconds for the server, and again for the graph")
    args = p.parse_args()
    chromium = shutil.which(os.environ.get("CHROMIUM") or "chromium")
    if not chromium:
        sys.exit("screenshot: chromium not found: `apt-get install chromium`, or set CHROMIUM=/path/to/chrome")
    if args.serve:
        serve_and_shoot(chromium, args)
    else:
        shoot(chromium, args.url, args.out, args.width, args.height, args.timeout)


if __name__ == "__main__":
    main()
