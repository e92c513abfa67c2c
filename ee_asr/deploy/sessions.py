"""Opening an exported ONNX graph: a missing, truncated or garbled file is a UserError naming
the file and ONNX Runtime's own reason (its exceptions carry no common base class and a
`[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model from ... failed:` prefix)."""

from pathlib import Path

import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as _state

from ee_asr.common.errors import UserError

_ORT_ERRORS = (RuntimeError,) + tuple(v for v in vars(_state).values()
                                      if isinstance(v, type) and issubclass(v, Exception))


def session_options(num_threads=1):
    """ONNX Runtime options of every session here: `num_threads` within an operator, and one
    between operators (the graphs are chains: nothing runs side by side)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    return opts


def load_session(path, options=None, providers=("CPUExecutionProvider",)):
    """An InferenceSession on `path`; UserError naming the file and why it cannot be loaded."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"ONNX graph {path} does not exist: export the model again (python -m ee_asr.bin.export_onnx)")
    try:
        return ort.InferenceSession(str(path), options, providers=list(providers))
    except _ORT_ERRORS as e:
        reason = str(e).split(" failed:", 1)[-1].strip() or type(e).__name__
        raise UserError(f"ONNX graph {path} cannot be loaded ({reason}): the file is damaged or not an "
                        "ONNX model; export the model again (python -m ee_asr.bin.export_onnx)") from None
