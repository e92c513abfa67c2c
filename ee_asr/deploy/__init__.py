"""A runtime for exported early-exit models that needs no PyTorch: numpy, onnxruntime,
sentencepiece, kaldi-native-fbank and soundfile only (tests/test_onnx_runtime.py checks that
importing and decoding never imports torch). Modules here import from ee_asr only what is
itself torch-free: common/, data/audio.py, data/tokenizer.py, exits/policies.py and
exits/ctc_prefix_beam.py."""
