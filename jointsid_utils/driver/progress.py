"""Live progress of a notebook that papermill runs: text bars in the kernel, a few clean lines in the runner.

In a kernel, tqdm draws its bars as widgets and the HF Trainer as HTML; a terminal sees neither, and
papermill relays nothing of them. So the runner starts each kernel with ``use_text_progress`` (text
bars, the package's log lines) and passes the kernel's output streams through a ``ProgressRelay``, which
keeps the study's own lines, drops library noise and shows a bar once per ten percent it moves.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Callable, NamedTuple

# Extra arguments of the kernel's command line (papermill passes them on to nbclient).
KERNEL_ARGUMENTS = [
    "--IPKernelApp.exec_lines=from jointsid_utils.driver.progress import use_text_progress; use_text_progress()",
    "--IPKernelApp.log_level=ERROR",  # its start-up warning about plain TCP on localhost says nothing of the study
]

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# tqdm's default formats: "desc: 42%|####  | 5/12 [00:03<00:04, 1.6it/s]" and, without a total,
# "desc: 5it [00:03, 1.6it/s]"; the HF Trainer's bars have no desc.
BAR = re.compile(r"^(?:(?P<desc>.*?): )?\s*(?P<percent>\d{1,3})%\|[^|]*\|\s*(?P<n>\S+)/(?P<total>\S+)"
                 r"\s+\[(?P<times>[^\]]*)\]")
COUNTER = re.compile(r"^(?:(?P<desc>.*?): )?(?P<n>\d[\d.]*[kMGT]?)(?P<unit>[^\s\[]*) \[(?P<times>[\d:]+, [^\]]*)\]")
# A Python warning as printed to stderr: "path/file.py:12: UserWarning: message", then the source line.
WARNING = re.compile(r"^(?P<path>\S.*?):\d+: (?P<category>\w*Warning): (?P<message>.*)$")
MAX_CHARS = 240


def use_text_progress() -> None:
    """Make this kernel draw progress as text: tqdm bars on stderr, the HF Trainer's text callback, and
    the package's INFO log lines on stdout. Runs at kernel start-up, before any library picks its style."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm warns on import in a kernel: no ipywidgets, or "experimental"
        from tqdm import asyncio as text_auto
        from tqdm import auto, autonotebook, std
    autonotebook.tqdm, autonotebook.trange = std.tqdm, std.trange
    auto.tqdm, auto.trange = text_auto.tqdm, text_auto.trange
    import transformers.utils

    transformers.utils.is_in_notebook = lambda: False  # read when transformers.trainer is imported
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    package = logging.getLogger("jointsid_utils")
    package.setLevel(logging.INFO)
    package.addHandler(handler)


class Bar(NamedTuple):
    """One drawn state of a tqdm bar; ``percent`` and ``total`` are None for a bar without a total."""

    desc: str
    percent: int | None
    n: str
    total: str | None
    times: str

    @property
    def key(self) -> tuple[str, str | None]:
        """Tells bars apart: the HF Trainer's training and evaluation bars share an empty desc."""
        return self.desc, self.total

    def __str__(self) -> str:
        head = f"{self.desc}: " if self.desc else ""
        count = f"{self.percent}% {self.n}/{self.total}" if self.total is not None else self.n
        return f"{head}{count} [{self.times}]"


def parse_bar(text: str) -> Bar | None:
    """The bar drawn in ``text``, or None when the text is not a tqdm bar."""
    if m := BAR.match(text):
        return Bar(m["desc"] or "", int(m["percent"]), m["n"], m["total"], m["times"])
    if m := COUNTER.match(text):
        return Bar(m["desc"] or "", None, m["n"] + m["unit"], None, m["times"])
    return None


class BarThrottle:
    """Lets a bar through when it finishes, when it has moved ``step`` percent since it last got through,
    or ``every_s`` seconds later if it moved less (or has no total); never twice within ``min_s`` seconds."""

    def __init__(self, *, step: int = 10, every_s: float = 60.0, min_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.step, self.every_s, self.min_s, self.clock = step, every_s, min_s, clock
        self.shown: dict[tuple[str, str | None], tuple[int, float, bool]] = {}  # key -> (percent, time, finished)

    def passes(self, bar: Bar) -> bool:
        now, percent = self.clock(), bar.percent if bar.percent is not None else 0
        last = self.shown.get(bar.key)
        if last is None or percent < last[0]:  # a new bar, or the same one started again
            last = (0, now, False)
            self.shown[bar.key] = last
        shown_percent, shown_at, finished = last
        if percent == 100:
            show = not finished
        elif now - shown_at < self.min_s:
            show = False
        elif bar.percent is None:
            show = now - shown_at >= self.every_s
        else:
            show = percent >= shown_percent + self.step or (percent > shown_percent and now - shown_at >= self.every_s)
        if show:
            self.shown[bar.key] = (percent, now, percent == 100)
        return show


class ProgressRelay:
    """Passes a kernel's ``stdout`` and ``stderr`` streams on to ``emit`` as progress lines.

    Kept: every stdout line (the package's and the notebook's prints and log lines), throttled tqdm bars
    from either stream, and warnings raised in ``jointsid_utils``. Dropped: everything else on stderr
    (library warnings, HF advisories, the kernel's own messages).
    """

    def __init__(self, emit: Callable[[str], None], throttle: BarThrottle | None = None):
        self.emit = emit
        self.throttle = throttle or BarThrottle()
        self.stdout = RelayStream(self, keep_lines=True)
        self.stderr = RelayStream(self, keep_lines=False)

    def say(self, text: str) -> None:
        """Emit one line, cut to ``MAX_CHARS`` (a printed table row or dict can run to thousands)."""
        self.emit(text if len(text) <= MAX_CHARS else text[:MAX_CHARS - 3] + "...")

    def close(self) -> None:
        """Pass on what is left of unfinished lines."""
        self.stdout.close()
        self.stderr.close()


class RelayStream:
    """The file papermill writes one kernel stream to: cuts it into lines at ``\\n`` and ``\\r``."""

    def __init__(self, relay: ProgressRelay, *, keep_lines: bool):
        self.relay, self.keep_lines = relay, keep_lines
        self.pending = ""
        self.after_warning = False

    def write(self, text: str) -> int:
        *lines, self.pending = re.split(r"[\r\n]", self.pending + text)
        if parse_bar(ANSI.sub("", self.pending)):  # a bar is drawn whole; show it before the next one comes
            lines.append(self.pending)
            self.pending = ""
        for line in lines:
            self.line(ANSI.sub("", line).rstrip())
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.write("\n")

    def line(self, text: str) -> None:
        """Pass on or drop one whole line: a bar, a warning (with its source line), or a plain line."""
        if not text.strip():
            return
        if bar := parse_bar(text):
            if self.relay.throttle.passes(bar):
                self.relay.say(str(bar))
        elif warning := WARNING.match(text):
            self.after_warning = True
            if "jointsid_utils" in warning["path"]:
                self.relay.say(f"{warning['category']}: {warning['message']}")
        elif text[0].isspace() and self.after_warning:
            pass  # the source line that Python prints under a warning
        else:
            self.after_warning = False
            if self.keep_lines:
                self.relay.say(text)
