"""Open a notebook in JupyterLab in a real browser, run its first cells, save a screenshot.

    .venv/bin/python scripts/check_jupyterlab.py [--notebook notebooks/01_data_and_queries.ipynb]
                                                 [--cells 2] [--out runs/browser/jupyterlab.png]
    .venv/bin/python scripts/check_jupyterlab.py --notebook notebooks/08_explore.ipynb --cells 7 \
        --runs runs --profile smoke --query "robots in space" --out runs/browser/explore.png

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``) and
``selenium`` (``pip install -e ".[browser]"``). JupyterLab runs on 127.0.0.1 with a random token over a
copy of the notebook and a throwaway runs folder (``JOINTSID_RUNS_DIR``), so the check never touches
``notebooks/`` or ``runs/``. It fails, naming the
step, when the page, the "Python (jointsid)" kernel or a cell's output does not appear in time.
With ``--query`` (notebook 08 after a run: ``--runs`` names that run's runs folder, read through a copy of the
notebook whose ``profile`` is ``--profile``) it then types the query into the explorer's text box, presses
Enter and waits for the generators' answer to it before the screenshot.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
KERNEL = "Python (jointsid)"
FAILED_SHOT = [REPO / "runs" / "browser" / "failed.png"]  # beside --out once main() knows it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(port: int, token: str, root: Path, runs: Path) -> subprocess.Popen:
    env = {**os.environ, "JOINTSID_RUNS_DIR": str(runs)}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--allow-root"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


def server_up(port: int, token: str) -> bool:
    from urllib.request import urlopen

    with urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2) as answer:
        return answer.status == 200


def wait_for(what: str, check, timeout: float, driver=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            found = check()
        except Exception:  # still starting: the server refuses, selenium raises until the element exists
            found = None
        if found:
            return found
        time.sleep(0.5)
    if driver is not None:
        FAILED_SHOT[0].parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(FAILED_SHOT[0]))
    raise SystemExit(f"error: {what} did not appear within {timeout:.0f} s.")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver_path), options=options)


def presses_for(notebook: Path, n_cells: int) -> int:
    """Shift+Enter presses from the first code cell through the ``n_cells``-th: markdown cells between code
    cells take a press each (it renders them and moves on)."""
    import json

    kinds = [c["cell_type"] for c in json.loads(notebook.read_text())["cells"]]
    code = [i for i, kind in enumerate(kinds) if kind == "code"]
    if not code:
        raise SystemExit(f"error: {notebook.name} has no code cell to run.")
    last = code[min(n_cells, len(code)) - 1]
    return last - code[0] + 1


def run_first_cells(driver, n_cells: int, timeout: float, presses: int | None = None) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for("the notebook's cells", lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell"), 60)
    wait_for(f"the kernel '{KERNEL}'", lambda: KERNEL in driver.page_source, 60)
    time.sleep(2)  # let the notebook settle: cells re-render once the kernel connects
    first = wait_for("the first code cell's editor", lambda: driver.find_element(
        By.CSS_SELECTOR, ".jp-CodeCell .jp-InputArea-editor"), 30)
    first.click()  # the first code cell, in edit mode
    for _ in range(presses or n_cells):  # Shift+Enter runs the cell and moves to the next one, as a person would
        ActionChains(driver).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()
        time.sleep(0.5)

    def code_cells():  # found anew: JupyterLab re-renders cells as they run
        return driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell")[:n_cells]

    def executed() -> bool:
        prompts = [c.find_element(By.CSS_SELECTOR, ".jp-InputPrompt").text for c in code_cells()]
        return all(p.strip() not in ("[ ]:", "[*]:", "") for p in prompts)

    wait_for(f"the execution of the first {n_cells} code cells", executed, timeout, driver)
    outputs = [c.text for c in code_cells()]
    if any("Traceback" in text for text in outputs):
        raise SystemExit("error: a cell raised; see the screenshot.")


def type_query(driver, query: str, timeout: float) -> None:
    """Type ``query`` into notebook 08's query box (the explorer widget's text field named "query"), press
    Enter, and wait until the search output answers it; the box and its answer are scrolled into view."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def query_box():
        for box in driver.find_elements(By.CSS_SELECTOR, ".widget-text"):
            if box.find_element(By.CSS_SELECTOR, "label").text.strip() == "query":
                return box.find_element(By.CSS_SELECTOR, "input")
        return None

    field = wait_for("the explorer's query box", query_box, timeout, driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", field)
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(query, Keys.ENTER)

    def answered():
        outputs = driver.find_elements(By.CSS_SELECTOR, ".widget-html")
        return next((o for o in outputs if repr(query) in o.text and "semantic_id" in o.text), None)

    wait_for(f"the answer to the query {query!r}", answered, timeout, driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'start'});", field)  # the box, its answer below
    time.sleep(1)


def with_profile(notebook: Path, profile: str) -> None:
    """Set the copy's ``profile`` parameter (the first cell tagged parameters), as papermill would."""
    import json

    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    cell["source"] = [f'profile: str = "{profile}"\n' if line.startswith("profile:") else line
                      for line in "".join(cell["source"]).splitlines(keepends=True)]
    notebook.write_text(json.dumps(nb, indent=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default="notebooks/01_data_and_queries.ipynb")
    parser.add_argument("--cells", type=int, default=2, help="code cells to run from the top")
    parser.add_argument("--out", default="runs/browser/jupyterlab.png")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--runs", default=None, help="a runs folder to read (notebook 08 after a run); default: "
                                                    "a throwaway one")
    parser.add_argument("--profile", default=None, help="set the copy's profile parameter, e.g. smoke")
    parser.add_argument("--query", default=None, help="type this into notebook 08's query box after the cells ran")
    args = parser.parse_args(argv)
    if not (REPO / args.notebook).exists():
        raise SystemExit(f"error: {args.notebook} does not exist; pass --notebook notebooks/NN_name.ipynb.")
    FAILED_SHOT[0] = (REPO / args.out).parent / "failed.png"
    port, token = free_port(), secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "lab"  # a copy of the notebook: an autosave never reaches the repository's
        (root / "notebooks").mkdir(parents=True)
        shutil.copy(REPO / args.notebook, root / "notebooks")
        if args.profile:
            with_profile(root / "notebooks" / Path(args.notebook).name, args.profile)
        lab = start_lab(port, token, root, Path(args.runs).resolve() if args.runs else Path(tmp) / "runs")
        driver = None
        try:
            wait_for("JupyterLab's server", lambda: server_up(port, token), 90)
            driver = browser()
            driver.get(f"http://127.0.0.1:{port}/lab/tree/notebooks/{Path(args.notebook).name}?token={token}")
            run_first_cells(driver, args.cells, args.timeout, presses_for(REPO / args.notebook, args.cells))
            if args.query:
                type_query(driver, args.query, args.timeout)
            out = REPO / args.out
            out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out))
            print(f"ran the first {args.cells} code cells of {args.notebook} with '{KERNEL}'; screenshot: {out}")
        finally:
            if driver is not None:
                driver.quit()
            lab.terminate()
            lab.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
