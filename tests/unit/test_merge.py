"""The merged export on the tiny offline model: the merged model's logits are
base + adapter's, it is written as safetensors shards with its config and
tokenizer, and loads with transformers alone."""

from __future__ import annotations

import json

import pytest
import torch

from services.trainer_agent.merge import merge_adapter
from services.trainer_agent.worker import adapter_facts

PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture
def adapter(tiny_model, tmp_path):
    """A LoRA adapter of the tiny model with random (not zero) weights, saved as the trainer saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules=PROJECTIONS, init_lora_weights=False,
                                            task_type="CAUSAL_LM"))
    out = tmp_path / "adapter"
    model.save_pretrained(out, safe_serialization=True)
    AutoTokenizer.from_pretrained(tiny_model).save_pretrained(out)
    return out, model


def test_the_merged_model_gives_base_plus_adapters_logits(tiny_model, adapter, tmp_path):
    from transformers import AutoModelForCausalLM

    adapter_dir, peft_model = adapter
    merged_dir = merge_adapter(str(tiny_model), adapter_dir, tmp_path / "merged", max_shard_size="200KB",
                               device=torch.device("cpu"))

    merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    probe = torch.tensor([[1, 5, 9, 23, 42, 7, 3, 11]])
    with torch.no_grad():
        expected = peft_model.eval()(input_ids=probe).logits
        base_only = AutoModelForCausalLM.from_pretrained(tiny_model).eval()(input_ids=probe).logits
        actual = merged(input_ids=probe).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    # The adapter changes the model: equal logits are the merge's doing, not the base's.
    assert (expected - base_only).abs().max() > 1e-2
    # No LoRA layers are left: plain transformers weights.
    assert not any("lora_" in name for name, _ in merged.named_parameters())


def test_the_merged_model_is_safetensors_shards_with_config_and_tokenizer(tiny_model, adapter, tmp_path):
    adapter_dir, _ = adapter
    out = merge_adapter(str(tiny_model), adapter_dir, tmp_path / "merged", max_shard_size="200KB",
                        device=torch.device("cpu"))
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    assert len(shards) > 1
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == shards
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        assert (out / name).is_file()
    assert not list(out.glob("*.bin"))


def test_adapter_facts_name_what_a_server_needs(adapter):
    _, peft_model = adapter
    assert adapter_facts(peft_model) == {
        "rank": 8, "target_modules": sorted(PROJECTIONS), "modules_to_save": [],
        "architecture": "LlamaForCausalLM", "dtype": "float32",
    }


def test_a_gguf_base_model_merges_like_the_model_it_was_written_from(tiny_model, adapter, tmp_path):
    from transformers import AutoModelForCausalLM

    from gguf_kit import write_tiny_gguf

    adapter_dir, _ = adapter
    gguf_file = write_tiny_gguf(tiny_model, tmp_path / "tiny.gguf")
    cpu = torch.device("cpu")
    from_dir = AutoModelForCausalLM.from_pretrained(merge_adapter(str(tiny_model), adapter_dir, tmp_path / "a", device=cpu))
    from_gguf = AutoModelForCausalLM.from_pretrained(merge_adapter(str(gguf_file), adapter_dir, tmp_path / "b", device=cpu))
    probe = torch.tensor([[1, 5, 9, 23, 42, 7, 3, 11]])
    with torch.no_grad():
        torch.testing.assert_close(from_gguf(input_ids=probe).logits, from_dir(input_ids=probe).logits,
                                   atol=1e-5, rtol=0)
