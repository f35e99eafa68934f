"""Scanned guest registration cards to validated records: the pipeline and its command line."""

import os

# The onnxruntime Linux wheel sends telemetry from native code unless this is
# set before the library loads, and this product must open no connection.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
