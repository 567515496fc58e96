"""Parity with Hugging Face transformers on tiny random GPT-2s (nothing is downloaded)."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from transformers.generation.logits_process import (  # noqa: E402
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

import nexttoken as nt  # noqa: E402
from nexttoken.checkpoint import CheckpointError  # noqa: E402
from nexttoken.hf import save_hf_gpt2  # noqa: E402
from nexttoken.sampling import min_p_filter, process_logits, top_k_filter, top_p_filter  # noqa: E402
from nexttoken.tokenizers import BPETokenizer  # noqa: E402

TEXT = (
    "See you soon. See you there. See you later, see you tomorrow, and see you all next week. "
    "The model predicts the next token from the tokens before it; greedy decoding takes the argmax. "
) * 20


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpe")
    (d / "corpus.txt").write_text(TEXT)
    return BPETokenizer.train([d / "corpus.txt"], vocab_size=300)


def _hf_model(vocab_size, **kw):
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=vocab_size,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **kw,
    )
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory, bpe):
    d = tmp_path_factory.mktemp("hf")
    model = _hf_model(bpe.vocab_size)
    model.save_pretrained(d)
    bpe.tok.model.save(str(d))  # vocab.json + merges.txt
    return d, model


def test_logits_match_transformers(hf_dir, bpe):
    d, hf = hf_dir
    lm = nt.load(d)
    ids = torch.tensor([bpe.encode("See you soon. The model predicts")])
    with torch.no_grad():
        expected = hf(ids).logits
    torch.testing.assert_close(lm.model(ids), expected, rtol=1e-4, atol=1e-4)
    assert lm.decode(ids[0]) == "See you soon. The model predicts"


def test_greedy_generation_matches_transformers(hf_dir, bpe):
    d, hf = hf_dir
    lm = nt.load(d)
    ids = torch.tensor([bpe.encode("See you")])
    ours = nt.generate(lm.model, ids, 20, greedy=True)
    theirs = hf.generate(
        ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False, pad_token_id=0
    )
    assert ours.tolist() == theirs.tolist()


def test_original_hub_names_without_prefix_and_untied_head(tmp_path, bpe):
    hf = _hf_model(bpe.vocab_size, tie_word_embeddings=False)
    with torch.no_grad():
        hf.lm_head.weight.normal_()
    from safetensors.torch import save_file

    state = {k.removeprefix("transformer."): v.contiguous() for k, v in hf.state_dict().items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({**hf.config.to_dict(), "model_type": "gpt2"}))
    bpe.tok.model.save(str(tmp_path))
    lm = nt.load(tmp_path)
    ids = torch.tensor([[1, 5, 9, 40]])
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids), hf(ids).logits, rtol=1e-4, atol=1e-4)


def test_export_round_trip(tmp_path, bpe):
    torch.manual_seed(1)
    model = nt.GPT(
        nt.GPTConfig(vocab_size=bpe.vocab_size, context_length=32, n_layer=2, n_head=2, n_embd=16)
    )
    save_hf_gpt2(model, bpe, tmp_path)
    hf = GPT2LMHeadModel.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, bpe.vocab_size, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids), rtol=1e-4, atol=1e-4)
    back = nt.load(tmp_path)
    torch.testing.assert_close(back.model(ids), model(ids))


def test_export_refuses_non_gpt2_architectures(tmp_path, bpe):
    model = nt.GPT(
        nt.GPTConfig(
            vocab_size=bpe.vocab_size,
            context_length=8,
            n_layer=1,
            n_head=2,
            n_embd=8,
            norm="rmsnorm",
        )
    )
    with pytest.raises(ValueError, match="norm='rmsnorm'"):
        save_hf_gpt2(model, bpe, tmp_path)


def test_pickle_weights_need_an_explicit_opt_in(tmp_path, bpe):
    hf = _hf_model(bpe.vocab_size)
    torch.save(hf.state_dict(), tmp_path / "pytorch_model.bin")
    hf.config.save_pretrained(tmp_path)
    bpe.tok.model.save(str(tmp_path))
    with pytest.raises(CheckpointError, match="pickle"):
        nt.load(tmp_path)
    lm = nt.load(tmp_path, allow_pickle=True)
    ids = torch.tensor([[3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(lm.model(ids), hf(ids).logits, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("seed", range(5))
def test_filters_keep_exactly_what_transformers_keeps(seed):
    torch.manual_seed(seed)
    logits = torch.randn(8, 200) * 3
    ids = torch.zeros(8, 1, dtype=torch.long)

    def kept(x):
        return torch.isfinite(x)

    for k in (1, 5, 50):
        assert torch.equal(
            kept(top_k_filter(logits, k)), kept(TopKLogitsWarper(k)(ids, logits.clone()))
        )
    for p in (0.1, 0.5, 0.9, 0.99):
        assert torch.equal(
            kept(top_p_filter(logits, p)), kept(TopPLogitsWarper(p)(ids, logits.clone()))
        )
    for m in (0.01, 0.1, 0.5):
        assert torch.equal(
            kept(min_p_filter(logits, m)), kept(MinPLogitsWarper(m)(ids, logits.clone()))
        )
    for t, k, p in ((0.7, 20, 0.9), (1.5, 100, 0.5)):
        theirs = TopPLogitsWarper(p)(
            ids, TopKLogitsWarper(k)(ids, TemperatureLogitsWarper(t)(ids, logits.clone()))
        )
        ours = process_logits(logits, temperature=t, top_k=k, top_p=p)
        assert torch.equal(kept(ours), kept(theirs))
        torch.testing.assert_close(ours[kept(ours)], theirs[kept(theirs)])


def test_hub_name_without_network_says_what_to_do(monkeypatch):
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(CheckpointError, match="download the directory elsewhere"):
        nt.load("gpt2")


def test_see_you_table_and_sampling_through_the_same_code(hf_dir, bpe):
    d, hf = hf_dir
    lm = nt.load(d)
    table = lm.next_token_distribution("See you", top_k=10)
    with torch.no_grad():
        probs = hf(torch.tensor([bpe.encode("See you")])).logits[0, -1].double().softmax(-1)
    top = probs.topk(10)
    assert [r.id for r in table.rows] == top.indices.tolist()
    torch.testing.assert_close(
        torch.tensor([r.probability for r in table.rows], dtype=torch.float64),
        top.values,
        rtol=1e-4,
        atol=1e-6,
    )
    assert abs(table.total - float(top.values.sum())) < 1e-4
    assert table.rows[0].token == bpe.token_str(table.rows[0].id)


def test_gpt2_directory_without_tokenizer_files_works_on_ids(tmp_path, capsys):
    from nexttoken.cli import main

    model = _hf_model(50)
    model.save_pretrained(tmp_path)  # weights and config only: the tokenizer was saved apart
    lm = nt.load(tmp_path)
    assert lm.tokenizer is None and "no tokenizer" in repr(lm)
    ids = torch.tensor([[1, 2, 3]])
    out = nt.generate(lm.model, ids, 4, greedy=True)
    expected = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=0)
    assert out.tolist() == expected.tolist()
    assert lm.token_str(7) == "<7>"
    with pytest.raises(CheckpointError, match="no tokenizer files .*vocab.json and merges.txt"):
        lm.encode("See you")
    assert main(["next", str(tmp_path), "See you"]) == 2
    assert "no tokenizer files" in capsys.readouterr().err
