"""Model export for serving without torch: SASRec to ONNX, scored with onnxruntime."""

from shelfwise.export.onnx import OnnxSequentialScorer, export_sasrec

__all__ = ["OnnxSequentialScorer", "export_sasrec"]
