"""A runtime for exported early-exit models that needs no PyTorch: numpy, onnxruntime,
sentencepiece, soundfile and editdistance (flashlight-text, when installed,
runs the nbest policy's beam; else a pure-Python one does). tests/test_onnx.py checks that
importing and decoding never imports torch. Modules here import from ee_asr only what is itself
torch-free: common/, data/audio.py, data/fbank.py, data/tokenizer.py, and of exits/ policies.py, ctc_forward.py,
ctc_prefix_beam.py, ctc_nbest.py (`nbest` only), nbest_posterior.py, agreement.py and
exit_classifier.py."""
