"""The serving compatibility table: each rule of vLLM's and LoRAX's published LoRA limits."""

from __future__ import annotations

import pytest

from services.artifact_svc import serving

LLAMA = {"rank": 16, "target_modules": ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"],
         "modules_to_save": [], "architecture": "LlamaForCausalLM", "dtype": "bfloat16"}


def _find(checks, server, what):
    return next(c for c in checks if c["server"] == server and c["check"] == what)


def test_a_standard_llama_adapter_passes_everywhere():
    checks = serving.serving_checks(LLAMA)
    assert {(c["server"], c["status"]) for c in checks} == {("vllm", "pass"), ("lorax", "pass")}
    assert {c["check"] for c in checks} == {"rank", "target_modules", "modules_to_save", "architecture", "dtype"}


@pytest.mark.parametrize(("rank", "status", "flag"), [
    (8, "pass", None), (16, "pass", None), (17, "warning", "--max-lora-rank 32"), (64, "warning", "--max-lora-rank 64"),
    (256, "warning", "--max-lora-rank 256"), (512, "fail", None),
])
def test_vllm_rank_above_the_default_needs_max_lora_rank(rank, status, flag):
    result = serving.vllm_rank(rank)
    assert result["status"] == status
    if flag:
        assert flag in result["reason"]


def test_vllm_refuses_modules_it_has_no_lora_layer_for():
    result = serving.vllm_target_modules("LlamaForCausalLM", ["lm_head", "q_proj"])
    assert result["status"] == "fail" and "lm_head" in result["reason"]


def test_an_unknown_architecture_is_a_warning_not_a_failure():
    checks = serving.serving_checks({**LLAMA, "architecture": "FalconForCausalLM"})
    assert _find(checks, "vllm", "architecture")["status"] == "warning"
    assert _find(checks, "vllm", "target_modules")["status"] == "warning"
    assert _find(checks, "lorax", "architecture")["status"] == "warning"


def test_modules_to_save_fail_on_both_servers():
    checks = serving.serving_checks({**LLAMA, "modules_to_save": ["embed_tokens"]})
    assert _find(checks, "vllm", "modules_to_save")["status"] == "fail"
    assert _find(checks, "lorax", "modules_to_save")["status"] == "fail"


def test_lorax_refuses_lora_on_embeddings():
    assert serving.lorax_target_modules(["embed_tokens", "q_proj"])["status"] == "fail"
    assert serving.lorax_target_modules(["lm_head", "q_proj"])["status"] == "pass"


@pytest.mark.parametrize(("dtype", "status"), [("bfloat16", "pass"), ("float16", "pass"), ("float32", "warning"),
                                               ("int8", "fail")])
def test_dtype(dtype, status):
    assert serving.vllm_dtype(dtype)["status"] == status
    assert serving.lorax_dtype(dtype)["status"] == status


def test_an_adapter_without_recorded_facts_gets_one_warning_per_server():
    checks = serving.serving_checks(None)
    assert [(c["server"], c["status"]) for c in checks] == [("vllm", "warning"), ("lorax", "warning")]
