"""What a program calls: the Recognizer (speech in, text out, with early exit, from a trained
experiment or an ONNX export) and the options the command-line tools share."""
