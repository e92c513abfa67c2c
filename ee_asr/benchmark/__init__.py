"""Timing tools, one room: training steps and throughput against ESPnet (step_timing, train_speed,
loading_speed), online exit policies (policy_speed), ONNX Runtime against PyTorch (onnx_speed).
Each measures within one run and reports ratios."""
