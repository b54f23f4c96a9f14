"""Reference models and the script that prints the native-vs-ONNX comparison table (``python -m benchmarks.run``)."""
