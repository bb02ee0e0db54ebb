"""Frozen backbones (3D ResNet for video, ResNet-18 for audio spectrograms), their weights, and runtimes."""
