"""The measurement layer: data, models, training, quantization, latency and the experiments that
write records. Needs torch; builds on :mod:`quide.analysis`."""
