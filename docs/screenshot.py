"""Render the Dagster UI's asset graph to a PNG for the README (docs/asset-graph.png).

    python docs/screenshot.py --url http://127.0.0.1:3000/asset-groups --out docs/asset-graph.png
    python docs/screenshot.py --serve --out docs/asset-graph.png   # runs its own `dagster dev`

Why not `chromium --screenshot`: the UI is a single-page app that draws the graph only after
its GraphQL queries return, so a fixed time budget captures a spinner or a half-drawn graph
depending on the machine, and the graph opens with its groups collapsed and cut off at the
edges. This drives headless Chromium over the DevTools protocol instead: it opens the page,
skips the "join the community" dialog, hides the side panels, expands every asset group,
zooms out until the whole lineage fits, waits until the drawing stops changing, and captures
it. `--serve` starts `dagster dev` on a free 127.0.0.1 port with this environment's
DAGSTER_HOME and TARMAC_DATA_DIR and always stops it, and its children, afterwards.
Needs Chromium (`apt-get install chromium`, or CHROMIUM=/path/to/chrome) and the `websockets`
package, which dagster-webserver already installs.
"""

from __future__ import annotations

import argparse, base64, json, os, shutil, signal, socket, subprocess, sys, tempfile, time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0"]
# Dagster shows a newsletter dialog on localhost until this key is set.
SKIP_DIALOG = "localStorage.setItem('communityNux', '\"1\"')"
# The graph's nodes, whether they fit inside the visible part of the graph pane, and a signature.
STATE = """(() => {
  const q = s => [...document.querySelectorAll(s)];
  const nodes = q('[class*="AssetNode_assetNodeContainer"],[class*="AssetNode_minimalAssetNodeBox"],[class*="GroupNode_"]');
  let pane = nodes[0] && nodes[0].closest('svg');
  while (pane && getComputedStyle(pane).overflow !== 'hidden') pane = pane.parentElement;
  if (!pane) return null;
  const v = pane.getBoundingClientRect(), svg = nodes[0].closest('svg');
  const top = Math.max(v.top, ...q('button').filter(b => !svg.contains(b))
    .map(b => b.getBoundingClientRect()).filter(r => r.left >= v.left && r.top < v.top + 80).map(r => r.bottom + 8));
  const b = [1e9, 1e9, -1e9, -1e9];
  for (const r of nodes.map(e => e.getBoundingClientRect()))
    [b[0], b[1], b[2], b[3]] = [Math.min(b[0], r.left), Math.min(b[1], r.top), Math.max(b[2], r.right), Math.max(b[3], r.bottom)];
  return {nodes: nodes.length, collapsed: q('[class*="CollapsedGroupNode_collapsedGroupNodeContainer"]').length,
          fits: b[0] >= v.left && b[1] >= top && b[2] <= v.right - 56 && b[3] <= v.bottom,
          sig: [svg.outerHTML.length, ...b.map(Math.round)].join()};
})()"""
CLICK = "[...document.querySelectorAll('button [aria-label=\"%s\"]')].map(i => i.closest('button').click()).length"


class DevTools:
    """Just enough of the Chrome DevTools protocol: call a method, skip the events."""

    def __init__(self, ws):
        self.ws, self.n = ws, 0

    def __call__(self, method: str, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while (msg := json.loads(self.ws.recv(timeout=60))).get("id") != self.n:
            pass
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return msg["result"]

    def js(self, expression: str):
        return self("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)["result"].get("value")


def settle(cdp: DevTools, deadline: float, url: str) -> dict:
    """Wait until the graph has nodes and has not changed for 2 s."""
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        state = cdp.js(STATE)
        if state and state["nodes"] and state != last:
            last, since = state, time.monotonic()
        elif state and state == last and time.monotonic() - since > 2:
            return state
        time.sleep(0.25)
    sys.exit(f"screenshot: the asset graph at {url} did not render within --timeout (is the code location loaded?)")


def shoot(url: str, out: Path, width: int, height: int, timeout: float) -> None:
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not chromium:
        sys.exit("screenshot: chromium not found; install it (`apt-get install chromium`) or set CHROMIUM=/path/to/chrome")
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryDirectory(prefix="screenshot-", ignore_cleanup_errors=True) as profile:
        browser = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            active = Path(profile, "DevToolsActivePort")  # Chromium writes its DevTools port here
            while not (active.exists() and active.read_text().strip()):
                if browser.poll() is not None or time.monotonic() > deadline:
                    sys.exit(f"screenshot: {chromium} exited or never opened its DevTools port")
                time.sleep(0.1)
            port = active.read_text().split()[0]
            targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
            page = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            with connect(page, max_size=None, open_timeout=30) as ws:
                cdp = DevTools(ws)
                cdp("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
                cdp("Page.enable")
                cdp("Page.addScriptToEvaluateOnNewDocument", source=SKIP_DIALOG)
                cdp("Page.navigate", url=url)
                state = settle(cdp, deadline, url)
                cdp.js(CLICK % "panel_show_right")  # hide the navigation and the asset-group sidebar
                if state["collapsed"]:  # Alt+E: the graph's own "expand all groups" shortcut
                    for kind in ("keyDown", "keyUp"):
                        cdp("Input.dispatchKeyEvent", type=kind, modifiers=1, key="e", code="KeyE", windowsVirtualKeyCode=69)
                    end = min(deadline, time.monotonic() + 10)
                    while (s := cdp.js(STATE)) and s["collapsed"] and time.monotonic() < end:
                        time.sleep(0.25)
                for _ in range(15):
                    state = settle(cdp, deadline, url)
                    if state["fits"] or not cdp.js(CLICK % "zoom_out"):
                        break
                if state["collapsed"] or not state["fits"]:
                    print("screenshot: warning: the graph is not fully expanded or does not fit; try a larger --height", file=sys.stderr)
                cdp.js("document.fonts.ready.then(() => true)")
                png = base64.b64decode(cdp("Page.captureScreenshot", format="png")["data"])
        finally:
            browser.terminate()
            browser.wait()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    print(f"screenshot: {url} -> {out} ({len(png) // 1024} KiB)")


def serve_and_shoot(args: argparse.Namespace) -> None:
    """Run `dagster dev` for the project on a free 127.0.0.1 port, shoot it, and always stop it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(__file__).resolve().parent.parent
    log = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
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
                    sys.exit(f"screenshot: dagster dev did not come up on port {port}:\n{tail}")
                time.sleep(0.5)
        shoot(f"http://127.0.0.1:{port}{args.path}", args.out, args.width, args.height, args.timeout)
    finally:  # dagster dev, its webserver, daemon and code servers share one process group
        for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(server.pid, sig)
                end = time.monotonic() + grace
                while time.monotonic() < end:
                    server.poll()
                    os.killpg(server.pid, 0)  # raises once the whole group is gone
                    time.sleep(0.2)
            except ProcessLookupError:
                break
        server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="asset graph page of a running Dagster UI, e.g. http://127.0.0.1:3000/asset-groups")
    where.add_argument("--serve", action="store_true", help="start dagster dev for this project and shoot that")
    p.add_argument("--path", default="/asset-groups", help="page to shoot with --serve (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("docs/asset-graph.png"))
    p.add_argument("--width", type=int, default=1600)
    p.add_argument("--height", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=90, help="seconds for the server and for the graph to render")
    args = p.parse_args()
    if args.serve:
        serve_and_shoot(args)
    else:
        shoot(args.url, args.out, args.width, args.height, args.timeout)


if __name__ == "__main__":
    main()
