"""Entry point of ``python -m ocr``."""

from ocr.cli import main

main()
