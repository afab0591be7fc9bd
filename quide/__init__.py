"""quide: the executable companion to "QuIDE: Mastering the Quantized Intelligence Trade-off".

The index (paper Eqs. 1-4) is exported here under the names the book and users call::

    quide.intelligence_index(C, P, T_ms)        # I  = C*P / log2(T+1)
    quide.gated_index(C, P, T_ms, p_thresh)     # I' = C*max(P-Pthresh, 0) / log2(T+1)
    quide.p_thresh(num_classes, p_fp, delta)    # max(1/K, P_FP - delta)
    quide.acp(C, P), quide.als(P, T_ms)

PTQ: ``quide.quantize(model, quide.PTQConfig(bits=4), calib_images)``.
Two layers: ``quide.analysis`` reads records and builds the book (no torch); ``quide.measure``
(data, models, training, PTQ, latency, the experiments) needs torch and is imported on use.
"""
__version__ = "0.1.0"

from .analysis.index import (acp, als, compression_paper, compression_true, gated_index, intelligence_index,  # noqa: F401
                    p_thresh, pareto_front, rank, ranking)


def __getattr__(name):
    # torch is imported only when PTQ is asked for, so the index stays light for the book.
    if name in ("quantize", "PTQConfig"):
        from .measure import quant
        return getattr(quant, name)
    raise AttributeError(f"module 'quide' has no attribute {name!r}")
