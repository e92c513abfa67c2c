"""ee-asr: early-exit speech recognition recipes on top of espnet's building blocks."""

__version__ = "0.1.0"


def __getattr__(name):
    # `from ee_asr import Recognizer` without loading torch or onnxruntime at `import ee_asr`
    if name == "Recognizer":
        from ee_asr.api.recognizer import Recognizer

        return Recognizer
    raise AttributeError(f"module 'ee_asr' has no attribute {name!r}")
