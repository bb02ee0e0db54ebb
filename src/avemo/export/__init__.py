"""Export of the frozen backbones to ONNX graphs with manifests (TensorRT plans are built from them)."""
