"""Execute the numbered notebooks with papermill, timing each and recording peak memory.

``python -m jointsid_utils.driver.runner --profile smoke --only 01,02 -p seed 1`` is what ``run_all.sh``
calls after installing. While a notebook runs, its progress lines (the package's messages, its
prints, throttled tqdm bars of fine-tunes, training and decoding) are shown indented under its name
(``jointsid_utils.driver.progress``). Executed copies go to ``runs/<folder>/notebooks/`` (the run's folder:
the profile's name, ``--name``, or the profile plus its overrides); per-notebook wall
time and the kernel's peak resident memory go to ``runs/<folder>/timings.csv`` (a skipped notebook
keeps its row: the cost of the copy that stands), and every run appends its rows, executed or
unchanged, to ``timings_log.csv``. A notebook whose notebook file, configuration, package code, library
versions and upstream notebooks are as in its last successful execution is not executed again
(``jointsid_utils.driver.stamps``; ``--force`` executes it anyway). The first failing notebook stops the run with
its name, the failing cell and the error's one-line message. Before any notebook starts, the profile,
the overrides and the data source (its files and their headers) are checked, so a bad configuration
fails in one sentence instead of inside notebook 01.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import yaml

from jointsid_utils.driver import stamps
from jointsid_utils.cache import REPO_ROOT, run_dir, write_bytes
from jointsid_utils.config import load_config
from jointsid_utils.data.dataset import check_source
from jointsid_utils.data.size import check_study_size
from jointsid_utils.embeddings.registry import check_extra_embeddings
from jointsid_utils.errors import StudyInputError
from jointsid_utils.runtime.environment import configure_runtime
from jointsid_utils.runtime.reproducibility import current_commit
from jointsid_utils.driver.progress import KERNEL_ARGUMENTS, ProgressRelay

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = "jointsid"


def numbered_notebooks(only: str | None = None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """``NN_name.ipynb`` files in order, optionally filtered to the numbers in ``only`` ("01,03")."""
    notebooks = sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return notebooks
    wanted = {n.strip().zfill(2) for n in only.split(",") if n.strip()}
    found = {p.name[:2] for p in notebooks}
    missing = sorted(wanted - found)
    if missing:
        raise StudyInputError(f"No notebook numbered {', '.join(missing)}; available: {', '.join(sorted(found))}.")
    return [p for p in notebooks if p.name[:2] in wanted]


class PeakMemory:
    """Samples the summed RSS of this process's children (the notebook kernel) in a thread, once a second:
    listing the children reads every process's /proc entry, which is not free (docs/DECISIONS.md)."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self.interval_s)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def show_progress(line: str) -> None:
    """One progress line of a running notebook, above papermill's bar of cells when there is one."""
    from tqdm.auto import tqdm  # papermill's own bar class, so the line is written above that bar

    tqdm.write(f"    {line}")
    sys.stdout.flush()


def run_notebook(notebook: Path, out_dir: Path, profile: str, overrides: dict) -> tuple[float, float]:
    """Execute one notebook, showing its progress; return (seconds, peak RSS in MB) or raise with the failing cell."""
    import papermill as pm

    relay = ProgressRelay(show_progress)
    started = time.perf_counter()
    with PeakMemory() as mem:
        try:
            pm.execute_notebook(str(notebook), str(out_dir / notebook.name), kernel_name=KERNEL,
                                parameters={"profile": profile, "overrides": overrides},
                                cwd=str(notebook.parent), progress_bar=sys.stderr.isatty(), log_output=False,
                                stdout_file=relay.stdout, stderr_file=relay.stderr,
                                extra_arguments=KERNEL_ARGUMENTS)
        except pm.PapermillExecutionError as err:
            raise NotebookFailed(notebook.name, err.exec_count, err.ename, err.evalue,
                                 out_dir / notebook.name) from None
        finally:
            relay.close()
    return time.perf_counter() - started, mem.peak_bytes / 2**20


class NotebookFailed(RuntimeError):
    def __init__(self, name: str, cell: int, ename: str, evalue: str, executed: Path):
        super().__init__(f"{name} failed in cell [{cell}] with {ename}: {evalue} "
                         f"(executed copy with the traceback: {executed})")


def update_timings(path: Path, rows: list[dict]) -> pd.DataFrame:
    """Merge this run's rows into timings.csv, keeping other notebooks' last measurements."""
    new = pd.DataFrame(rows, columns=["notebook", "seconds", "peak_rss_mb"])
    if path.exists():
        old = pd.read_csv(path)
        new = pd.concat([old[~old.notebook.isin(new.notebook)], new]).sort_values("notebook")
    write_bytes(path, new.to_csv(index=False, float_format="%.1f").encode())
    return new


LOG_COLUMNS = ["run_started", "notebook", "status", "seconds", "peak_rss_mb", "overrides"]


def append_log(path: Path, rows: list[dict]) -> pd.DataFrame:
    """Every run's rows, executed or unchanged, appended to timings_log.csv (rewritten atomically)."""
    new = pd.DataFrame(rows, columns=LOG_COLUMNS)
    if path.exists():
        new = pd.concat([pd.read_csv(path), new], ignore_index=True)
    write_bytes(path, new.to_csv(index=False, float_format="%.2f").encode())
    return new


def run_or_reuse(nb: Path, out_dir: Path, profile: str, overrides: dict, upstream: str | None,
                 force: bool) -> tuple[str, float, float]:
    """("executed" or "unchanged", seconds, peak RSS MB) of one notebook."""
    executed, root = out_dir / nb.name, out_dir.parent
    key = stamps.notebook_key(nb, load_config(profile, overrides), upstream)
    started = time.perf_counter()
    if not force and (stamp := stamps.unchanged(executed, key, root)):
        seconds = time.perf_counter() - started
        print(f"    unchanged since its run of {stamp['finished']}: the executed copy stands (--force executes it)",
              flush=True)
        return "unchanged", seconds, 0.0
    stamps.clear(executed)
    before = stamps.file_times(root)
    seconds, peak = run_notebook(nb, out_dir, profile, overrides)
    stamps.write_stamp(executed, key, before, root, seconds)
    print(f"    done in {seconds:.1f} s, peak kernel memory {peak:.0f} MB", flush=True)
    return "executed", seconds, peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--only", default=None, help="notebook numbers, e.g. 01,03")
    parser.add_argument("--force", action="store_true", help="execute notebooks whose inputs did not change too")
    parser.add_argument("--name", default=None, help="the run's folder under runs/ (default: derived from the "
                                                     "profile and overrides)")
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR, help=argparse.SUPPRESS)
    parser.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"),
                        help="parameter override (repeatable), e.g. -p ids.codebook_size 32")
    args = parser.parse_args(argv)
    configure_runtime()  # before any kernel starts: every notebook's kernel inherits this environment
    overrides = {key: yaml.safe_load(value) for key, value in args.p}
    if args.name:
        overrides["run_name"] = args.name
    try:
        # The whole configuration fails here, before any kernel starts: overrides, data settings, data files.
        cfg = load_config(args.profile, overrides)
        check_source(cfg)
        check_extra_embeddings(cfg)  # supplied item vectors: readable, 2-D, finite, unique ids
        check_study_size(cfg)  # a catalogue too small for a stage: one sentence, not notebook 01's traceback
        notebooks = numbered_notebooks(args.only, args.notebook_dir)
        if not notebooks:
            raise StudyInputError(f"No notebooks found in {args.notebook_dir}.")
        with RunLock(cfg.folder):
            return run_notebooks(args, cfg, overrides, notebooks)
    except (StudyInputError, NotebookFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


def run_notebooks(args: argparse.Namespace, cfg, overrides: dict, notebooks: list[Path]) -> int:
    """Each notebook in order into ``runs/<folder>/notebooks/``. Its timing row and ``run.json`` are written as
    soon as it ends, so a run killed mid-way (SIGKILL skips ``finally``) keeps the record of what it finished
    and a resumed run keeps the first start."""
    folder = cfg.folder
    out_dir = run_dir(folder, "notebooks")
    print(f"    run folder runs/{folder}/", flush=True)
    every = numbered_notebooks(None, args.notebook_dir)
    run_started, wall, commit = time.strftime("%Y-%m-%d %H:%M:%S"), time.perf_counter(), current_commit(REPO_ROOT)
    names = [nb.stem for nb in notebooks]

    def record(status: str) -> None:
        write_run_record(folder, args.profile, overrides, run_started, time.perf_counter() - wall, status, names,
                         commit)

    executed, logged, status = 0, 0, "failed"
    record("running")
    try:
        for i, nb in enumerate(notebooks, 1):
            print(f"[{i}/{len(notebooks)}] {nb.name}", flush=True)
            before = [p for p in every if p.name < nb.name]
            upstream = (stamps.read_stamp(out_dir / before[-1].name) or {}).get("key") if before else None
            state, seconds, peak = run_or_reuse(nb, out_dir, args.profile, overrides, upstream, args.force)
            append_log(run_dir(folder) / "timings_log.csv",
                       [{"run_started": run_started, "notebook": nb.stem, "status": state, "seconds": seconds,
                         "peak_rss_mb": peak, "overrides": json.dumps(overrides, sort_keys=True)}])
            logged += 1
            if state == "executed":
                update_timings(run_dir(folder) / "timings.csv",
                               [{"notebook": nb.stem, "seconds": round(seconds, 1), "peak_rss_mb": round(peak, 1)}])
                executed += 1
            record("running")
        status = "finished"
    finally:
        record(status)
    print(f"{logged} notebooks: {executed} executed, {logged - executed} unchanged; this run "
          f"{time.perf_counter() - wall:.0f} s (runs/{folder}/timings.csv, timings_log.csv)")
    return 0


class RunLock:
    """One run per run folder at a time: a second ``./run_all.sh`` on the same folder stops at once with a
    sentence saying what to do, instead of writing the same files. Runs in other folders go on side by side
    (the store's per-entry locks keep their shared artifacts whole)."""

    def __init__(self, folder: str):
        from filelock import FileLock

        self.folder = folder
        self.lock = FileLock(str(run_dir(folder) / ".run.lock"), timeout=0)

    def __enter__(self) -> "RunLock":
        from filelock import Timeout

        try:
            self.lock.acquire()
        except Timeout:
            raise StudyInputError(f"runs/{self.folder}/ is in use by another run; wait for it to finish, or give "
                                  "this one its own folder with --name NAME.") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def write_run_record(folder: str, profile: str, overrides: dict, started: str, seconds: float, status: str,
                     notebooks: list[str], commit: str | None) -> None:
    """``runs/<folder>/run.json``: what made this folder (profile, overrides, the commit at its start), when, and
    how it ended; ``driver.runs`` lists and compares runs from these records."""
    path = run_dir(folder) / "run.json"
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        earlier = {}
    record = {"folder": folder, "profile": profile, "overrides": {k: v for k, v in overrides.items() if k != "run_name"},
              "started": started, "seconds": round(seconds, 1), "status": status, "notebooks": notebooks,
              "commit": commit, "first_started": earlier.get("first_started", started)}
    write_bytes(path, json.dumps(record, indent=1, sort_keys=True, default=str).encode())


if __name__ == "__main__":
    sys.exit(main())
