"""Small generic catalogues on disk (CSV items and interactions), for the bad-input tests."""

from __future__ import annotations

from pathlib import Path


CAT_ITEMS = "item_id,title,text,year,categories\n" + "".join(
    f'{i},Film {i},"Title: Film {i}. A story, number {i}.",{1990 + i % 20},Drama\n' for i in range(1, 41))


CAT_INTER = "user_id,item_id,timestamp,rating\n" + "".join(
    f"{u},{(u * 7 + k) % 40 + 1},{1000 * u + k},4.0\n" for u in range(1, 31) for k in range(6))


def catalogue_dir(tmp_path: Path, items: str | bytes = CAT_ITEMS, inter: str | bytes = CAT_INTER,
                  items_name: str = "items.csv") -> Path:
    out = tmp_path / "catalogue"
    out.mkdir()
    (out / items_name).write_bytes(items if isinstance(items, bytes) else items.encode())
    (out / "interactions.csv").write_bytes(inter if isinstance(inter, bytes) else inter.encode())
    return out
