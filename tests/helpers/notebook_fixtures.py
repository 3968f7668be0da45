"""Throwaway notebooks for the runner tests."""

from pathlib import Path

import nbformat


def make_notebook(path: Path, body: str) -> None:
    params = nbformat.v4.new_code_cell('profile: str = "default"\noverrides: dict = {}')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook(cells=[params, nbformat.v4.new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "jointsid", "display_name": "Python (jointsid)", "language": "python"}
    nbformat.write(nb, path)
