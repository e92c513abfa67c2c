"""ee-asr: early-exit speech recognition recipes on top of espnet's building blocks."""

__version__ = "0.1.0"
