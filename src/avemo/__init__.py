"""avemo: audio-visual emotion recognition (Mocanu, Tapu & Zaharia, Image and Vision Computing 2023)."""

__version__ = "0.1.0"
