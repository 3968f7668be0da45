"""The stage protocol (jointsid_utils.stages): a code edit rebuilds exactly the stages that reach it.

The builders live in a tiny package written into a temporary folder, so each test can edit their source the
way a developer would and watch which stages rebuild: a builder's own edit and an edit to a helper two calls
down rebuild that stage and its dependents only; a comment or docstring edit, or no edit, rebuilds nothing.
"""

from __future__ import annotations

import functools
import importlib
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from jointsid_utils import store
from jointsid_utils.fingerprint import code_fingerprint
from jointsid_utils.stages import Stage, Workspace, materialize, produce, published

from stage_builds import slow_build

TINY = {
    "__init__.py": "",
    "low.py": """
        def offset():
            return 1
    """,
    "mid.py": """
        from {pkg}.low import offset


        def value():
            return offset() + 1
    """,
    "a_stage.py": """
        from {pkg}.mid import value


        def build_a(ws, log):
            with open(log, "a") as fh:
                fh.write("a\\n")
            (ws.out / "a.txt").write_text(str(value()))
    """,
    "b_stage.py": """
        def build_b(ws, log, a_out):
            with open(log, "a") as fh:
                fh.write("b\\n")
            (ws.out / "b.txt").write_text((a_out / "a.txt").read_text() * 2)
    """,
    "d_cached.py": """
        from jointsid_utils.cache import cached
        from {pkg}.mid import value


        def make(path, log):
            def build(tmp):
                with open(log, "a") as fh:
                    fh.write("d\\n")
                tmp.write_text(str(value()))

            return cached(path, {{"k": 1}}, build)
    """,
    "c_stage.py": """
        def build_c(ws, log):
            with open(log, "a") as fh:
                fh.write("c\\n")
            (ws.out / "c.txt").write_text("c")
    """,
}


class TinyPackage:
    """A throwaway package of three stages: b reads a's output; c is unrelated; a reaches low two calls down."""

    def __init__(self, root: Path):
        self.name = f"tinypkg_{uuid.uuid4().hex[:8]}"
        self.dir = root / self.name
        self.dir.mkdir(parents=True)
        self.log = root / "built.log"
        for name, text in TINY.items():
            (self.dir / name).write_text(textwrap.dedent(text).format(pkg=self.name))
        sys.path.insert(0, str(root))

    def edit(self, module: str, old: str, new: str) -> None:
        path = self.dir / module
        text = path.read_text()
        assert old in text, f"{old!r} is not in {module}"
        path.write_text(text.replace(old, new))

    def _fresh(self, module: str):
        for name in [n for n in sys.modules if n == self.name or n.startswith(self.name + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        return importlib.import_module(f"{self.name}.{module}")

    def run_all(self) -> list[str]:
        """Produce the three stages as a run would, fresh from the source on disk; the stages that built."""
        self.log.write_text("")
        a = Stage("a", functools.partial(self._fresh("a_stage").build_a, log=self.log), outputs=("a.txt",))
        a_out = produce(a)
        b = Stage("b", functools.partial(self._fresh("b_stage").build_b, log=self.log, a_out=a_out),
                  outputs=("b.txt",), inputs={"a": a.key})
        produce(b)
        c = Stage("c", functools.partial(self._fresh("c_stage").build_c, log=self.log), outputs=("c.txt",))
        produce(c)
        return self.log.read_text().split()


@pytest.fixture
def tiny(tmp_path, runs_dir):
    package = TinyPackage(tmp_path / "src")
    yield package
    sys.path.remove(str(tmp_path / "src"))


def test_first_run_builds_all_and_an_unchanged_rerun_builds_nothing(tiny):
    assert tiny.run_all() == ["a", "b", "c"]
    assert tiny.run_all() == []


def test_a_builder_edit_rebuilds_its_stage_and_its_dependents_only(tiny):
    tiny.run_all()
    tiny.edit("a_stage.py", '.write_text(str(value()))', '.write_text(str(value() + 0))')
    assert tiny.run_all() == ["a", "b"]
    tiny.edit("c_stage.py", 'write_text("c")', 'write_text("cc")')
    assert tiny.run_all() == ["c"]


def test_a_helper_two_calls_down_rebuilds_its_stage_and_its_dependents_only(tiny):
    tiny.run_all()
    tiny.edit("low.py", "return 1", "return 2")
    assert tiny.run_all() == ["a", "b"]
    out = store.store_root() / "b"
    assert sorted(p.read_text() for p in out.glob("*/out/b.txt")) == ["22", "33"]


def test_a_comment_or_docstring_edit_rebuilds_nothing(tiny):
    tiny.run_all()
    tiny.edit("low.py", "def offset():\n", "def offset():\n    \"\"\"Why one.\"\"\"\n    # a comment\n\n")
    tiny.edit("a_stage.py", "def build_a", "# the first stage\ndef build_a")
    assert tiny.run_all() == []


def test_the_fingerprint_follows_closures_and_ignores_unreached_modules(tiny):
    tiny.run_all()
    mid = tiny._fresh("mid")
    closure = (lambda f: lambda ws: f())(mid.value)  # a builder defined here that calls into the package
    before = code_fingerprint(closure)
    tiny.edit("c_stage.py", 'write_text("c")', 'write_text("x")')
    assert code_fingerprint(closure) == before
    tiny.edit("low.py", "return 1", "return 3")
    assert code_fingerprint(closure) != before


def _resumable(ws: Workspace, log: Path) -> None:
    """Fails once after checkpointing half its work; the second call finishes from the checkpoint."""
    checkpoint = ws.scratch / "half.txt"
    if not checkpoint.exists():
        checkpoint.write_text("half")
        (ws.out / "result.txt").write_text("partial")
        raise RuntimeError("killed mid-build")
    with open(log, "a") as fh:
        fh.write("resumed\n")
    (ws.out / "result.txt").write_text(checkpoint.read_text() + "+rest")


def test_a_failed_build_publishes_nothing_and_the_next_call_resumes_from_scratch(runs_dir, tmp_path):
    log = tmp_path / "log"
    stage = Stage("resume", functools.partial(_resumable, log=log), outputs=("result.txt",))
    with pytest.raises(RuntimeError, match="killed"):
        materialize(stage)
    assert published(stage) is None
    assert not list(stage.entry.glob(".out-*")) and not (stage.entry / "out").exists()
    assert (stage.entry / "scratch" / "half.txt").read_text() == "half"
    out = materialize(stage)
    assert (out / "result.txt").read_text() == "half+rest" and log.read_text() == "resumed\n"
    assert not (stage.entry / "scratch").exists()


def _missing_output(ws: Workspace) -> None:
    (ws.out / "one.txt").write_text("1")


def test_a_build_without_every_declared_output_publishes_nothing(runs_dir):
    stage = Stage("partial", _missing_output, outputs=("one.txt", "two.txt"))
    with pytest.raises(RuntimeError, match="two.txt"):
        materialize(stage)
    assert published(stage) is None


def _prunes_while_building(ws: Workspace) -> None:
    (ws.out / "kept.txt").write_text("kept")
    assert store.prune() == []  # this entry is locked by its build: prune must skip it


def test_prune_during_a_build_leaves_it_intact(runs_dir):
    stage = Stage("pruned", _prunes_while_building, outputs=("kept.txt",))
    out = materialize(stage)
    assert (out / "kept.txt").read_text() == "kept"
    assert store.prune() == [f"pruned/{stage.key}"]  # unlisted and unlocked: now it goes
    assert published(stage) is None


def test_prune_keeps_what_a_run_folder_lists(runs_dir):
    stage = Stage("listed", _missing_output, outputs=("one.txt",))
    produce(stage, {"one.txt": runs_dir / "smoke" / "x" / "one.txt"})
    assert (runs_dir / "smoke" / "x" / "one.txt").read_text() == "1"
    assert store.prune() == [] and published(stage) is not None


def test_bad_outputs_fail_early_naming_the_stage(runs_dir):
    with pytest.raises(ValueError, match="'odd' declares outputs"):
        Stage("odd", _missing_output, outputs=())


def test_a_notebooks_code_hash_follows_its_imports_only(tiny):
    from jointsid_utils.fingerprint import imports_fingerprint

    tiny.run_all()
    before = imports_fingerprint([f"{tiny.name}.a_stage"])
    tiny.edit("c_stage.py", 'write_text("c")', 'write_text("z")')  # not imported by a_stage
    tiny.edit("low.py", "return 1", "return 1  # one")
    assert imports_fingerprint([f"{tiny.name}.a_stage"]) == before
    tiny.edit("low.py", "return 1", "return 4")
    assert imports_fingerprint([f"{tiny.name}.a_stage"]) != before


def test_cached_follows_the_callers_code_two_calls_down(tiny, runs_dir):
    def make() -> list[str]:
        tiny.log.write_text("")
        path = tiny._fresh("d_cached").make(runs_dir / "smoke" / "results" / "d.txt", tiny.log)
        assert path.read_text() in ("2", "3")
        return tiny.log.read_text().split()

    assert make() == ["d"] and make() == []
    tiny.edit("low.py", "return 1", "return 2")
    assert make() == ["d"] and (runs_dir / "smoke" / "results" / "d.txt").read_text() == "3"


def test_rebuild_builds_a_published_stage_again(runs_dir, tmp_path):
    log = tmp_path / "log"
    stage = Stage("again", functools.partial(slow_build, log=log), outputs=("slow.txt",))
    materialize(stage)
    materialize(stage)
    materialize(stage, rebuild=True)
    assert log.read_text() == "built\nbuilt\n" and published(stage) is not None
