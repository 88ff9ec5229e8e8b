"""The web page at `/`: draw or upload an image, see the top-k labels with bars and the unsure flag.

One self-contained HTML file (no CDN, works offline on a LAN box), shipped as package data."""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files


@lru_cache(maxsize=1)
def page_html() -> str:
    return files(__package__).joinpath("page.html").read_text(encoding="utf-8")
