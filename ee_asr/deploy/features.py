"""The features an ONNX export's model was trained on, from its manifest's `fbank` options (written
at export from ee_asr.data.fbank), so the runtime computes exactly those."""

from ee_asr.common.errors import UserError
from ee_asr.data.fbank import Fbank, FbankOptions


def manifest_fbank(onnx_dir, spec):
    try:
        return Fbank(FbankOptions.from_spec(spec))
    except UserError as e:
        raise UserError(f"{onnx_dir}/manifest.json: fbank: {e}") from None
