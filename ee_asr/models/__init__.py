import contextlib
import sys

# espnet's attention module prints a notice on stdout when flash-attn is absent; stdout is for
# results (transcribe prints one line per file), so the notice is sent to stderr instead.
with contextlib.redirect_stdout(sys.stderr):
    import espnet.nets.pytorch_backend.transformer.attention  # noqa: F401
