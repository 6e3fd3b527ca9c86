"""The generation core on the tiny offline model: the adapter's answer, the
base model's answer with the adapter disabled, greedy and seeded sampling,
prompts rendered as training renders them, only new tokens decoded."""

from __future__ import annotations

import pytest
import torch

from services.trainer_agent.conversations import prompt_ids, tokenize_conversation
from services.trainer_agent.generation import SamplingSettings, generate, load_for_generation

CONVERSATIONS = [[{"role": "user", "content": "hello world"}], [{"role": "user", "content": "one two three"}]]


@pytest.fixture(scope="module")
def adapter(tiny_model, tmp_path_factory):
    """A LoRA adapter whose weights are not zero: it changes what the model writes."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    config = LoraConfig(r=8, lora_alpha=64, target_modules="all-linear", init_lora_weights=False)
    out = tmp_path_factory.mktemp("adapter")
    get_peft_model(base, config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def loaded(tiny_model, adapter):
    return load_for_generation(str(tiny_model), adapter, torch.device("cpu"))


def test_greedy_answers_are_the_same_every_time_and_the_base_answer_is_the_base_models(tiny_model, loaded):
    from transformers import AutoModelForCausalLM

    model, tokenizer = loaded
    greedy = SamplingSettings(max_new_tokens=12)
    first = generate(model, tokenizer, CONVERSATIONS, greedy, include_base=True)
    again = generate(model, tokenizer, CONVERSATIONS, greedy, include_base=True)
    assert first == again
    assert [set(r) for r in first] == [{"completion", "base_completion"}] * 2
    assert any(r["completion"] != r["base_completion"] for r in first)
    # The base answer is the plain base model's, with no adapter at all.
    plain = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    for messages, result in zip(CONVERSATIONS, first):
        ids = prompt_ids(tokenizer, messages)
        out = plain.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
        assert result["base_completion"] == tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    assert "base_completion" not in generate(model, tokenizer, CONVERSATIONS[:1], greedy)[0]


def test_the_base_answer_is_written_with_the_adapter_disabled(loaded, monkeypatch):
    model, tokenizer = loaded
    entered = []
    original = type(model).disable_adapter

    def spy(self):
        entered.append(True)
        return original(self)

    monkeypatch.setattr(type(model), "disable_adapter", spy)
    generate(model, tokenizer, CONVERSATIONS, SamplingSettings(max_new_tokens=2), include_base=True)
    assert len(entered) == len(CONVERSATIONS)


def test_sampling_follows_the_seed(loaded):
    model, tokenizer = loaded
    hot = SamplingSettings(max_new_tokens=16, temperature=1.5, seed=11)
    assert generate(model, tokenizer, CONVERSATIONS, hot) == generate(model, tokenizer, CONVERSATIONS, hot)
    others = {generate(model, tokenizer, CONVERSATIONS[:1], SamplingSettings(16, 1.5, seed))[0]["completion"]
              for seed in range(4)}
    assert len(others) > 1


def test_the_prompt_is_the_training_render_up_to_the_assistant_header(loaded):
    _, tokenizer = loaded
    messages = [{"role": "user", "content": "hello"}]
    trained = tokenize_conversation(tokenizer, [*messages, {"role": "assistant", "content": "HELLO"}], 64)
    prompt = prompt_ids(tokenizer, messages)
    assert trained.input_ids[: len(prompt)] == prompt
    # The first trained token follows the prompt directly: the adapter is asked where it learned to answer.
    assert trained.labels[len(prompt)] != -100 and all(label == -100 for label in trained.labels[: len(prompt)])
