"""Font lookup for the card renderer.

Only the Debian packages fonts-arphic-ukai, fonts-arphic-uming and
fonts-wqy-zenhei are required. DejaVu is used for printed Latin text when it is
installed, and a CJK font (which also has Latin glyphs) takes its place when it
is not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

__all__ = ["FontNotFoundError", "FontSet", "load_fonts"]

log = logging.getLogger(__name__)

FONT_DIRS = (
    Path("/usr/share/fonts"),
    Path("/usr/local/share/fonts"),
    Path.home() / ".local/share/fonts",
    Path.home() / ".fonts",
)

# (file name, face index inside a .ttc collection). Index 0 of the arphic
# collections is the simplified-Chinese (CN) face.
UKAI = ("ukai.ttc", 0)
UMING = ("uming.ttc", 0)
ZENHEI = ("wqy-zenhei.ttc", 0)
DEJAVU_SANS = ("DejaVuSans.ttf", 0)
DEJAVU_SANS_BOLD = ("DejaVuSans-Bold.ttf", 0)
DEJAVU_MONO = ("DejaVuSansMono.ttf", 0)

# Fallback chains per role, best first. Every chain ends in the CJK fonts so a
# machine with any one of the three Debian packages can render every role.
ROLE_CANDIDATES: dict[str, tuple[tuple[str, int], ...]] = {
    "handwriting": (UKAI, UMING, ZENHEI),
    "cjk_print": (ZENHEI, UMING, UKAI),
    "cjk_label": (ZENHEI, UMING, UKAI),
    "latin_print": (DEJAVU_MONO, DEJAVU_SANS, ZENHEI, UMING, UKAI),
    "latin_label": (DEJAVU_SANS, ZENHEI, UMING, UKAI),
    "latin_title": (DEJAVU_SANS_BOLD, DEJAVU_SANS, ZENHEI, UMING, UKAI),
    "serial": (DEJAVU_MONO, DEJAVU_SANS, ZENHEI, UMING, UKAI),
}

DEBIAN_PACKAGES = "fonts-arphic-ukai fonts-arphic-uming fonts-wqy-zenhei"


class FontNotFoundError(RuntimeError):
    """No usable font file was found for a rendering role."""


@dataclass(frozen=True)
class FontSet:
    """Font files chosen for each rendering role: role -> (path, face index)."""

    files: dict[str, tuple[Path, int]]

    def font(self, role: str, size_px: int) -> ImageFont.FreeTypeFont:
        """Return the font of ``role`` at ``size_px`` pixels (em size)."""
        path, index = self.files[role]
        return _truetype(str(path), index, max(4, int(size_px)))


@lru_cache(maxsize=512)
def _truetype(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


@lru_cache(maxsize=1)
def _installed_font_files() -> dict[str, Path]:
    """Map file name -> first path found under the usual font folders."""
    found: dict[str, Path] = {}
    for folder in FONT_DIRS:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in (".ttf", ".ttc", ".otf"):
                found.setdefault(path.name, path)
    return found


@lru_cache(maxsize=1)
def load_fonts() -> FontSet:
    """Pick a font file for every role, falling back along ``ROLE_CANDIDATES``.

    Raises FontNotFoundError, naming the Debian packages to install, when no
    candidate of a role is installed.
    """
    installed = _installed_font_files()
    files: dict[str, tuple[Path, int]] = {}
    for role, candidates in ROLE_CANDIDATES.items():
        for name, index in candidates:
            if name in installed:
                files[role] = (installed[name], index)
                break
        else:
            raise FontNotFoundError(
                f"未找到可用于“{role}”的字体。请安装 Debian 软件包：apt-get install {DEBIAN_PACKAGES}。"
                f" / No font found for role {role!r}; install the Debian packages {DEBIAN_PACKAGES}."
            )
        if files[role][0].name != candidates[0][0]:
            log.info("font role %s uses fallback %s", role, files[role][0])
    return FontSet(files)
