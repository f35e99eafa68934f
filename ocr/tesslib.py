"""Tesseract in this process: the C API of the system's libtesseract, through ctypes.

Running the ``tesseract`` program once per zone loads the chi_sim model every
time: over 70 zones of generated cards on a 2-core Intel Xeon (2.1 GHz) that
took 0.32 s of CPU per zone, against 0.09 s per zone read here, where each
language set is loaded once per process and kept.

The library is the one the Debian ``tesseract-ocr`` package installs, so a zone
reads exactly as the program reads it: the TSV is the program's ``tsv`` output
without its header row. PyPI's tesserocr wheel bundles another Tesseract release
(5.5 where Debian 12 has 5.3), whose scores and some readings differ, and the
confidence stage is calibrated on the Debian release's output.

Images are H x W x 3 uint8 RGB arrays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import weakref

import numpy as np

__all__ = ["LIBRARY_NAMES", "TessLibrary", "TessLibraryError", "load_library"]

log = logging.getLogger(__name__)

# The shared library's names, newest soname first; Debian 12 installs libtesseract.so.5.
LIBRARY_NAMES = ("libtesseract.so.5", "libtesseract.so.4")


class TessLibraryError(RuntimeError):
    """libtesseract is missing or a language model failed to load."""


def _declare(lib: ctypes.CDLL) -> None:
    """Declare the argument and result types of the C functions used, so that handles stay 64-bit."""
    handle = ctypes.c_void_p
    text = ctypes.POINTER(ctypes.c_char)
    signatures = {
        "TessVersion": ([], ctypes.c_char_p),
        "TessBaseAPICreate": ([], handle),
        "TessBaseAPIDelete": ([handle], None),
        "TessBaseAPIEnd": ([handle], None),
        "TessBaseAPIInit3": ([handle, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
        "TessBaseAPISetVariable": ([handle, ctypes.c_char_p, ctypes.c_char_p], ctypes.c_int),
        "TessBaseAPISetPageSegMode": ([handle, ctypes.c_int], None),
        "TessBaseAPISetImage": (
            [handle, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int],
            None,
        ),
        "TessBaseAPIGetTsvText": ([handle, ctypes.c_int], text),
        "TessBaseAPIClear": ([handle], None),
        "TessDeleteText": ([text], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype


def load_library() -> ctypes.CDLL:
    """Load and declare libtesseract; raise :class:`TessLibraryError` when it is not installed."""
    # OpenMP threads would make a one-line read spin a second core; set before libgomp loads.
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    names = list(LIBRARY_NAMES)
    found = ctypes.util.find_library("tesseract")
    if found:
        names.append(found)
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        _declare(lib)
        return lib
    raise TessLibraryError(f"libtesseract not found (tried {', '.join(names)}); install tesseract-ocr")


def _end(lib: ctypes.CDLL, handles: dict[str, int]) -> None:
    # Ending the handles before exit keeps Tesseract from printing leak warnings of its model cache.
    for handle in handles.values():
        lib.TessBaseAPIEnd(handle)
        lib.TessBaseAPIDelete(handle)
    handles.clear()


class TessLibrary:
    """One Tesseract handle per language set, loaded on first use and kept for the process.

    Calls are serialised by a lock, because a handle holds the image being read.
    """

    def __init__(self) -> None:
        self._lib = load_library()
        self._handles: dict[str, int] = {}
        self._lock = threading.Lock()
        self.version = self._lib.TessVersion().decode()
        weakref.finalize(self, _end, self._lib, self._handles)

    def _handle(self, languages: str) -> int:
        handle = self._handles.get(languages)
        if handle is not None:
            return handle

        handle = self._lib.TessBaseAPICreate()
        # A null data path takes the library's default, the tessdata folder the tesseract program uses.
        if self._lib.TessBaseAPIInit3(handle, None, languages.encode()) != 0:
            self._lib.TessBaseAPIDelete(handle)
            raise TessLibraryError(f"Tesseract failed to load the language models {languages!r}")
        # Diagnostics such as "Estimating resolution as 274" would reach the user's terminal.
        self._lib.TessBaseAPISetVariable(handle, b"debug_file", os.devnull.encode())
        self._handles[languages] = handle
        log.info("tesseract library ready version=%s languages=%s", self.version, languages)
        return handle

    def tsv(self, image: np.ndarray, *, languages: str, psm: int, whitelist: str = "") -> str:
        """Read ``image`` (H x W x 3 RGB) and return Tesseract's TSV rows, without the header row.

        ``psm`` is the page segmentation mode; ``whitelist`` limits the characters read, and an
        empty one allows every character of the models.
        """
        pixels = np.ascontiguousarray(image, dtype=np.uint8)
        if pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"expected an H x W x 3 image, got shape {pixels.shape}")
        height, width = pixels.shape[:2]

        with self._lock:
            handle = self._handle(languages)
            self._lib.TessBaseAPISetVariable(handle, b"tessedit_char_whitelist", whitelist.encode())
            self._lib.TessBaseAPISetPageSegMode(handle, psm)
            self._lib.TessBaseAPISetImage(handle, pixels.ctypes.data, width, height, 3, int(pixels.strides[0]))
            result = self._lib.TessBaseAPIGetTsvText(handle, 0)
            try:
                return ctypes.string_at(result).decode("utf-8") if result else ""
            finally:
                if result:
                    self._lib.TessDeleteText(result)
                self._lib.TessBaseAPIClear(handle)
