import contextlib
import io
import sys

# espnet's attention module prints "Failed to import Flash Attention, using ESPnet default" when
# the optional flash-attn is absent (always on CPU): a notice users cannot act on. It is dropped
# here, around that one import; anything else the import prints still reaches stdout.
_notice = io.StringIO()
with contextlib.redirect_stdout(_notice):
    import espnet.nets.pytorch_backend.transformer.attention  # noqa: F401
sys.stdout.write("".join(line for line in _notice.getvalue().splitlines(keepends=True)
                         if not line.startswith("Failed to import Flash Attention")))
del _notice
