"""The LLM case study (quide.measure.llm) on CPU: MMLU prompts, scoring, group-wise RTN, and the whole path
on a tiny randomly initialised Llama saved in the layout of a real checkpoint."""
import json

import pytest
import torch

from quide.analysis import mmlu_stats
from quide.measure import llm, mmlu
from quide.measure.latency import TimerConfig

transformers = pytest.importorskip("transformers")


@pytest.mark.parametrize("bits", [8, 4, 3, 2])
def test_group_rtn_levels_and_error(bits):
    torch.manual_seed(0)
    w = torch.randn(6, 300)
    q = llm.quantize_group_rtn(w, bits, group_size=128)
    assert q.shape == w.shape
    for g in range(0, 300, 128):
        block = w[:, g:g + 128]
        qb = q[:, g:g + 128]
        step = block.abs().amax(1, keepdim=True) / ((2 ** bits - 1) / 2)
        assert all(len(torch.unique(r)) <= 2 ** bits for r in qb)
        inside = block.abs() <= step * (2 ** (bits - 1) - 1)
        assert ((qb - block).abs()[inside] <= step.expand_as(block)[inside] / 2 + 1e-6).all()


def tiny_llama(folder, vocab_words):
    """A 2-layer Llama and a BPE tokenizer trained on a few MMLU-like strings, saved like a hub model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.train_from_iterator(vocab_words, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"],
                                                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      tie_word_embeddings=True)
    LlamaForCausalLM(cfg).save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-llama")
    try:
        words = [mmlu.prompt(i) + " A B C D" for i in mmlu.load_mmlu("dev")][:200]
    except FileNotFoundError:
        pytest.skip("MMLU not in QUIDE_DATA")
    tiny_llama(folder, words)
    return folder


def test_whole_path_on_a_tiny_llama(tiny):
    params = llm.LLMParams(model=str(tiny), bits=[16, 4, 2], subjects=["anatomy", "virology"], limit=3, n_shot=1,
                           dtype="float32", device="cpu", batch_size=4, latency_context_tokens=4, latency_rounds=6, latency_passes=1)
    records = llm.run(params, log=None)
    assert [r["bits"] for r in records] == [16, 4, 2]
    for r in records:
        assert r["n_questions"] == 6 and r["n_shot"] == 1 and r["T_kind"] == "simulated"
        assert 0 <= r["P_ci95"][0] <= r["P"] <= r["P_ci95"][1] <= 1 and r["T_unit"] == llm.T_UNIT
        assert r["p_thresh"] == pytest.approx(max(0.25, records[0]["P"] - 0.07))
    assert records[1]["C_paper"] == 8 and records[1]["C_true"] < 8   # embeddings stay at 16 bits
    from quide.config import data_root
    prov = records[0]["provenance"]
    assert prov["data_sha256"] == mmlu_stats.file_sha256(data_root() / mmlu.MMLU_FILE)
    assert prov["transformers"] == transformers.__version__ and prov["device"].startswith("CPU")
    # deployed T on CPU: FP32 as loaded is timed; 4 and 2 bits have no CPU kernel, and say so
    assert records[0]["T_deployed_ms"] > 0 and records[0]["I_deployed"] > 0
    assert records[1]["T_deployed_ms"] is None and "CUDA" in records[1]["T_deployed_reason"]
    assert records[2]["T_deployed_ms"] is None and records[2]["I_gated_deployed"] is None
    assert "no 2-bit kernel" in records[2]["T_deployed_reason"]
    from quide.analysis import results
    path = results.write_records(records, "llm_case_study", "tiny", root=tiny / "results")
    assert len(results.load_records(tiny / "results", "llm_case_study")) == 3 and path.is_file()


@pytest.mark.slow
def test_a_5_shot_run_writes_records_and_samples_that_verify(tiny, monkeypatch):
    """5-shot (examples: the first 5 dev items of each question's subject) on the tiny Llama: one
    samples file per bit-width beside the records, which verify recomputes; torchao made
    unavailable, as on a machine without it: the 8-bit record says why it has no deployed T."""
    import sys
    from quide.analysis import results
    from quide.analysis.verify import verify
    monkeypatch.setitem(sys.modules, "torchao.quantization", None)
    shots_used = {}
    real_encode = llm.encode
    monkeypatch.setattr(llm, "encode", lambda tok, items, shots, n, *scoring: shots_used.update(shots) or real_encode(tok, items, shots, n, *scoring))
    params = llm.LLMParams(model=str(tiny), bits=[16, 8, 2], subjects=["anatomy", "virology"], limit=2, n_shot=5,
                           dtype="float32", device="cpu", batch_size=4, latency_context_tokens=4, latency_rounds=6,
                           latency_passes=1)
    root = tiny / "results-5shot"
    folder = root / "llm_case_study"
    records = llm.run(params, log=None, samples_dir=folder)
    path = results.write_records(records, "llm_case_study", llm.run_stem(params), root=root)
    assert verify(root) == (3, [])
    for subject in ("anatomy", "virology"):
        assert shots_used[subject] == mmlu.load_mmlu("dev", [subject])[:5]
    ids = [i.doc_id for i in mmlu.load_mmlu("test", params.subjects, params.limit)]
    samples = {}
    for r in records:
        assert r["n_shot"] == 5 and r["n_questions"] == 4 and r["samples_file"] == llm.samples_name(params, r["bits"])
        samples[r["bits"]] = rows = mmlu_stats.read_samples(folder / r["samples_file"])
        assert [s["doc_id"] for s in rows] == ids and sum(s["correct"] for s in rows) / 4 == r["P"]
        assert mmlu_stats.file_sha256(folder / r["samples_file"]) == r["samples_sha256"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([path.name] + [r["samples_file"] for r in records])
    assert records[0]["T_deployed_ms"] > 0 and records[0]["I_deployed"] > 0
    assert records[1]["T_deployed_ms"] is None and records[1]["T_deployed_reason"] == "torchao is not installed"
    assert records[1]["I_deployed"] is None and records[1]["I_gated_deployed"] is None
    test = mmlu_stats.mcnemar(samples[16], samples[2])
    assert test["n_questions"] == 4 and test["b"] + test["c"] <= 4 and 0 < test["p_value"] <= 1


def test_quantization_changes_weights_and_run_restores_them(tiny):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32)
    before = model.model.layers[0].mlp.up_proj.weight.clone()
    info = llm.quantize_weights_(model, 2, group_size=32)
    after = model.model.layers[0].mlp.up_proj.weight
    assert not torch.equal(before, after) and info["layers"] == 14   # 7 per layer, LM head kept
    assert torch.equal(model.get_output_embeddings().weight, model.get_input_embeddings().weight)


def test_deployed_int8_weights_are_real_int8_and_close_to_the_rounded_model(tiny):
    """torchao's int8 weight-only copy stores int8 (not rounded floats), leaves the original and
    the LM head alone, and its logits agree with the simulated int8 model's (SNR > 30 dB)."""
    pytest.importorskip("torchao")
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32).eval()
    deployed, kind = llm.deploy_weights(model, 8)
    assert "int8" in kind
    w = deployed.model.layers[0].mlp.up_proj.weight
    assert w.qdata.dtype == torch.int8 and type(model.model.layers[0].mlp.up_proj.weight) is torch.nn.Parameter
    assert type(deployed.get_output_embeddings().weight) is torch.nn.Parameter   # the LM head is kept
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(ids).logits
        llm.quantize_weights_(model, 8, group_size=model.config.hidden_size)   # per row, as deployed
        sim, dep = model(ids).logits, deployed(ids).logits
    snr_db = 10 * torch.log10(ref.pow(2).mean() / (dep - sim).pow(2).mean())
    assert snr_db > 30, snr_db
    lat = llm.decode_step_latency(deployed, context_tokens=4, timer=TimerConfig(rounds=6, passes=1, warmup=0))
    assert lat["T_ms"] > 0 and lat["T_method"] == "host" and lat["T_ci_ms"][0] <= lat["T_ms"] <= lat["T_ci_ms"][1]


def test_deploy_refuses_what_has_no_kernel(tiny):
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32)
    assert llm.deploy_weights(model, 3) == (None, "no 3-bit kernel in torchao")
    assert llm.deploy_weights(model, 4)[0] is None   # tinygemm: CUDA and BF16 only
    with pytest.raises(ValueError, match="bits"):
        llm.deploy_weights(model, 5)
    with pytest.raises(ValueError, match="context_tokens"):
        llm.decode_step_latency(model, context_tokens=0)


def test_a_decode_step_is_one_fixed_piece_of_work(tiny):
    """The timed step writes the same cache slot each call: repeated calls give the same logits
    (the work does not grow with the number of calls, as a growing cache's would)."""
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(tiny), dtype=torch.float32).eval()
    calls = []
    forward = model.forward
    logits = []

    def spy(*a, **k):
        calls.append(tuple(k["input_ids"].shape))
        out = forward(*a, **k)
        logits.append(out.logits.clone())
        return out
    model.forward = spy
    lat = llm.decode_step_latency(model, context_tokens=5, timer=TimerConfig(rounds=6, passes=2, warmup=1))
    assert calls[0] == (1, 5) and set(calls[1:]) == {(1, 1)} and len(calls) == 1 + 1 + 6 * 2   # prefill, warm-up, rounds
    assert all(torch.equal(logits[1], later) for later in logits[2:])   # same slot, same context each step
    assert lat["T_ms"] > 0 and lat["T_rounds"] == 6 and lat["context_tokens"] == 5


@pytest.mark.parametrize("kwargs, message", [({"bits": [16, 1]}, "bits"), ({"bits": [4, 16]}, "start with 16"),
                                             ({"n_shot": 6}, "n_shot"), ({"delta": None}, "delta"),
                                             ({"group_size": 0}, "group_size"), ({"limit": 0}, "limit"),
                                             ({"latency_context_tokens": 0}, "latency_context_tokens"),
                                             ({"latency_rounds": 5}, "latency_rounds"),
                                             ({"scoring": "letters"}, "scoring")])
def test_parameters_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        llm.LLMParams(**kwargs)


@pytest.mark.slow
def test_notebook_runs_a_llama_layout_checkpoint_given_as_a_parameter(tiny, tmp_path):
    """The notebook runs any checkpoint folder in the Llama layout (as Llama-3-8B's would be)."""
    import os
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "out.ipynb"
    cmd = [sys.executable, "-m", "papermill", "-k", "python3", str(root / "notebooks" / "llm_case_study.ipynb"),
           str(out), "--cwd", str(root), "-p", "model", str(tiny), "-y", json.dumps(
               {"bits": [16, 4], "subjects": ["anatomy"], "limit": 2, "dtype": "float32", "device": "cpu",
                "latency_context_tokens": 2, "latency_rounds": 6, "latency_passes": 1, "deployed": False})]
    env = {**os.environ, "QUIDE_RESULTS": str(tmp_path / "results")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = list((tmp_path / "results" / "llm_case_study").glob("*.json"))
    assert len(files) == 1 and [r["bits"] for r in json.loads(files[0].read_text())] == [16, 4]
    samples = sorted(p.name for p in files[0].parent.glob("samples_*.jsonl.gz"))
    assert samples == sorted(r["samples_file"] for r in json.loads(files[0].read_text())) and len(samples) == 2


@pytest.mark.slow
def test_batched_scoring_equals_each_sequence_scored_alone(tiny):
    """score() pads, batches by length and normalises only the positions it reads: its
    log-likelihoods match each sequence run alone through the model with a full log-softmax,
    for one-forward ("last") items and per-letter ("each") items alike."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    items = mmlu.load_mmlu("test", ["anatomy", "virology"], 3)
    encoded = mmlu.encode(tokenizer, items, None, 512)
    assert {kind for kind, _, _ in encoded} == {"each"}   # this BPE splits " A" after "Answer:"
    # the same items once more in the one-forward form: each context, four single-token letters
    last = [("last", seqs[0][:len(seqs[0]) - n[0]], [5, 6, 7, 8]) for _, seqs, n in encoded]
    for enc in (encoded, last):
        scored = mmlu.score(model, tokenizer, items, batch_size=3, encoded=enc)
        for (kind, seqs, info), got in zip(enc, scored["loglik"]):
            with torch.no_grad():
                if kind == "last":
                    logp = torch.log_softmax(model(input_ids=torch.tensor([seqs])).logits[0, -1].float(), -1)
                    want = [float(logp[t]) for t in info]
                else:
                    want = []
                    for seq, n in zip(seqs, info):
                        logp = torch.log_softmax(model(input_ids=torch.tensor([seq])).logits[0].float(), -1)
                        want.append(sum(float(logp[p, seq[p + 1]]) for p in range(len(seq) - n - 1, len(seq) - 1)))
            assert got == pytest.approx(want, abs=1e-4)


# --- cloze scoring (issue 43) ----------------------------------------------------------------

def test_a_cloze_run_is_named_apart_and_its_records_and_samples_verify(tiny):
    """scoring="cloze": the answers' texts are scored (records say so, with lm-eval's acc_norm as
    P_norm), under a run name of their own, and verify recomputes P and P_norm from the samples."""
    from quide.analysis import results
    from quide.analysis.verify import verify
    kw = dict(model=str(tiny), bits=[16, 2], subjects=["anatomy"], limit=3, dtype="float32", device="cpu",
              batch_size=4, latency_context_tokens=4, latency_rounds=6, latency_passes=1, deployed=False)
    letter, cloze = llm.LLMParams(**kw), llm.LLMParams(**kw, scoring="cloze")
    assert llm.run_stem(letter) != llm.run_stem(cloze) and "-0shot-cloze-" in llm.run_stem(cloze)
    assert llm.samples_name(letter, 2) != llm.samples_name(cloze, 2)
    root = tiny / "results-cloze"
    records = llm.run(cloze, log=None, samples_dir=root / "llm_case_study")
    results.write_records(records, "llm_case_study", llm.run_stem(cloze), root=root, run_params=cloze.resolved())
    assert verify(root) == (2, [])
    for r in records:
        assert r["scoring"] == "cloze" and 0 <= r["P_norm_ci95"][0] <= r["P_norm"] <= r["P_norm_ci95"][1] <= 1
        rows = mmlu_stats.read_samples(root / "llm_case_study" / r["samples_file"])
        items = mmlu.load_mmlu("test", ["anatomy"], 3)
        assert [s["choice_chars"] for s in rows] == [[len(c) for c in it.choices] for it in items]
        assert sum(s["correct_norm"] for s in rows) / 3 == r["P_norm"]


def test_gguf_formats_take_bits_per_weight_from_the_gguf_package(tmp_path):
    """Q4_1 (32 weights in 20 bytes: 4-bit codes, an FP16 scale and an FP16 minimum) is 5.0 bits
    per weight, Q8_0 8.5, F32 32, as the gguf package's block sizes say; the blocks' Linear
    weights, the embeddings and the rest are told apart by name."""
    import numpy as np
    gguf = pytest.importorskip("gguf")
    from gguf import quants
    Q = gguf.GGMLQuantizationType
    x = np.random.default_rng(0).standard_normal((4, 64)).astype(np.float32)
    path = tmp_path / "tiny.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    for name in ("blk.0.attn_q.weight", "blk.0.ffn_down.weight"):
        w.add_tensor(name, quants.quantize(x, Q.Q4_1), raw_dtype=Q.Q4_1)
    w.add_tensor("token_embd.weight", quants.quantize(x, Q.Q8_0), raw_dtype=Q.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(64, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    table = llm.gguf_weight_formats(path).set_index("role")
    assert table.loc["linear", "format"] == "Q4_1" and table.loc["linear", "tensors"] == 2
    assert table.loc["linear", "weights"] == 512 and table.loc["linear", "bits_per_weight"] == 5.0
    assert table.loc["embedding", "bits_per_weight"] == 8.5 and table.loc["other", "bits_per_weight"] == 32.0
    assert mmlu_stats.source_bits_per_weight(table.reset_index()) == 5.0


def test_the_committed_gguf_formats_agree_with_the_gguf_package_and_the_records():
    """The page's "C relative to the model as loaded" reads the committed formats table: its bits
    per weight are the gguf package's, and its weights are the records' quantized and other ones."""
    import pandas as pd
    gguf = pytest.importorskip("gguf")
    from pathlib import Path
    from quide.analysis import results
    root = Path(__file__).resolve().parents[1] / "data" / "results"
    (path,) = (root / "llm_case_study").glob("gguf_formats_*.csv")
    table = pd.read_csv(path)
    for row in table.itertuples():
        block_weights, block_bytes = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[row.format]]
        assert (row.block_weights, row.block_bytes) == (block_weights, block_bytes)
        assert row.bits_per_weight == 8 * block_bytes / block_weights
    recs = results.load_records(root, experiment="llm_case_study")
    gguf_recs = recs[recs["model"].str.endswith("/" + table["file"].iloc[0])]
    assert len(gguf_recs) and (gguf_recs["quantized_params"] == table.loc[table["role"] == "linear", "weights"].sum()).all()
    assert (gguf_recs["other_params"] == table.loc[table["role"] != "linear", "weights"].sum()).all()
    assert mmlu_stats.source_bits_per_weight(table) == 5.0   # all Linear weights are Q4_1
