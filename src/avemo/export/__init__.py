"""Export of the frozen backbones to ONNX graphs and TensorRT engines (not built yet)."""
