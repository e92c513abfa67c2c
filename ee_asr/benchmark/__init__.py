"""Timing tools, one room: training steps (step_timing), online exit policies (policy_speed),
ONNX Runtime against PyTorch (onnx_speed). Each measures within one run and reports ratios."""
