import pytest

from services.common.errors import InvalidArgument
from services.job_svc.catalogue import GPU_TYPES
from services.job_svc.estimate import estimate
from services.job_svc.hyperparameters import resolve


def test_the_estimate_follows_the_spec_formula():
    # H100 x2: $8.40/h, 4400 tokens/s. 1000 conversations, 200k tokens, batch 8, 3 epochs.
    result = estimate(GPU_TYPES["H100"], 2, {"conversations": 1000, "validation_conversations": 0}, 200_000, 8, 3)
    assert result.steps_per_epoch == 125 and result.total_steps == 375
    training_seconds = 375 * (200 * 8 / 4400)  # 136.36 s
    hours = (training_seconds + 600 + 3 * 300 + 300) / 3600
    assert result.hourly_rate == 8.40
    assert result.estimated_duration_hours == round(hours, 2)
    assert result.compute == round(8.40 * hours, 2)
    assert result.storage == 0.50
    assert result.estimated_cost == round(8.40 * hours + 0.50, 2)
    assert result.throughput_tokens_per_sec == 4400


def test_the_estimate_steps_over_the_training_conversations_and_costs_all_their_tokens():
    statistics = {"conversations": 50, "validation_conversations": 10, "total_training_pairs": 150}
    result = estimate(GPU_TYPES["H100"], 2, statistics, 20_000, 8, 2)
    assert (result.steps_per_epoch, result.total_steps) == (5, 10)  # 40 conversations, not 150 pairs
    # A step is 8 conversations of 400 tokens (20k over all 50) at 4400 tokens/s.
    assert result.estimated_duration_hours == round((10 * 8 * 400 / 4400 + 600 + 2 * 300 + 300) / 3600, 2)


def test_the_estimate_falls_back_like_the_spec_when_the_dataset_has_no_statistics():
    result = estimate(GPU_TYPES["A100-80GB"], 1, {}, 0, 4, 1)
    assert result.total_steps == 250  # 1000 conversations assumed


def test_a_cpu_job_costs_nothing_but_storage():
    assert estimate(GPU_TYPES["CPU"], 1, {"conversations": 48}, 4000, 8, 2).estimated_cost == 0.50


def test_the_preset_fills_what_the_user_left_out():
    config = resolve("conservative", {"learning_rate": 0.0005}, "H100", 1, "base")
    assert config.learning_rate == 0.0005
    assert (config.batch_size, config.epochs, config.rank, config.alpha) == (4, 3, 8, 16)
    assert config.base_model == "base" and config.max_seq_length == 2048


def test_alpha_defaults_to_twice_a_given_rank():
    assert resolve("balanced", {"rank": 64}, "H100", 1, "b").alpha == 128


def test_every_bad_field_is_reported_together():
    with pytest.raises(InvalidArgument) as info:
        resolve("turbo", {"learning_rate": 0.5, "batch_size": 100, "epochs": 50, "rank": 2, "dropout": 0.9}, "TPU", 1, "b")
    assert set(info.value.details) == {
        "preset_id",
        "hyperparameters.learning_rate",
        "hyperparameters.batch_size",
        "hyperparameters.epochs",
        "hyperparameters.rank",
        "hyperparameters.dropout",
        "gpu_config.type",
    }


def test_gpu_count_is_bounded_by_the_catalogue():
    with pytest.raises(InvalidArgument) as info:
        resolve("balanced", {}, "CPU", 2, "b")
    assert set(info.value.details) == {"gpu_config.count"}


def test_a_dropout_of_zero_is_kept_not_replaced_by_the_preset():
    from brightrun.job.v1 import job_pb2
    from google.protobuf import json_format

    given = json_format.MessageToDict(job_pb2.Hyperparameters(dropout=0.0), preserving_proto_field_name=True)
    assert resolve("balanced", given, "CPU", 1, "b").dropout == 0.0
    assert resolve("balanced", {}, "CPU", 1, "b").dropout == 0.1


# The spec's values: FR-3.3's page (fast, balanced, quality) and FR-1.1 (conservative, aggressive).
SPEC_PRESETS = {
    "fast": (0.0001, 8, 1, 8, 16, 0.05),
    "balanced": (0.00005, 4, 3, 16, 32, 0.1),
    "quality": (0.00003, 2, 5, 32, 64, 0.1),
    "conservative": (0.0001, 4, 3, 8, 16, 0.05),
    "aggressive": (0.0003, 16, 10, 32, 64, 0.1),
}


@pytest.mark.parametrize("preset_id", sorted(SPEC_PRESETS))
def test_a_named_preset_alone_is_a_whole_configuration_with_the_spec_values(preset_id):
    config = resolve(preset_id, {}, "A100-80GB", 1, "b")
    values = (config.learning_rate, config.batch_size, config.epochs, config.rank, config.alpha, config.dropout)
    assert values == SPEC_PRESETS[preset_id]
    assert config.preset_id == preset_id


def test_custom_needs_the_four_hyperparameters_and_names_each_missing_one():
    with pytest.raises(InvalidArgument) as info:
        resolve("custom", {"rank": 8}, "CPU", 1, "b")
    assert set(info.value.details) == {f"hyperparameters.{n}" for n in ("learning_rate", "batch_size", "epochs")}
    given = {"learning_rate": 0.0001, "batch_size": 2, "epochs": 1, "rank": 8}
    assert resolve("", given, "CPU", 1, "b").preset_id == "custom"


@pytest.mark.parametrize("field", ["epochs", "batch_size", "rank", "learning_rate", "alpha", "max_seq_length"])
def test_an_explicit_zero_is_refused_with_the_real_range_not_replaced_by_the_preset(field):
    with pytest.raises(InvalidArgument) as info:
        resolve("balanced", {field: 0}, "CPU", 1, "b")
    assert "must be between" in info.value.details[f"hyperparameters.{field}"][0]
