"""Keras model -> IR -> quantized IR -> C. The library API mirrors `rnn2c export`."""

from rnn2c.export.api import ExportResult, export_model
from rnn2c.export.ir import ExportError

__all__ = ["ExportError", "ExportResult", "export_model"]
