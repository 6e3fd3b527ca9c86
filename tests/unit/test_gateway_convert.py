import json

import pytest

from brightrun.billing.v1 import billing_pb2
from brightrun.dataset.v1 import dataset_pb2
from brightrun.job.v1 import job_pb2
from gateway.convert import enum_from_json, json_to_message, message_to_json, parse_json_object
from gateway.errors import HttpError

JOB_BODY = {
    "dataset_id": "6f1c7e1e-57a1-4a55-9c1c-7a0c1d2b8f10",
    "preset_id": "custom",
    "gpu_config": {"type": "A100-80GB", "count": 2},
    "hyperparameters": {"learning_rate": 0.0002, "batch_size": 4, "epochs": 3, "rank": 16, "alpha": 32},
    "estimated_cost": 12.5,
}
JOB_REQUIRED = ("dataset_id", "gpu_config", "gpu_config.type", "hyperparameters", "hyperparameters.rank")


def _problems(body, cls=job_pb2.CreateJobRequest, **kwargs) -> dict:
    with pytest.raises(HttpError) as caught:
        json_to_message(body, cls, **kwargs)
    assert caught.value.status == 400 and caught.value.error == "Validation error"
    return caught.value.details


def test_enums_become_the_specs_lower_case_strings():
    assert message_to_json(job_pb2.Job(status=job_pb2.JOB_STATUS_RUNNING))["status"] == "running"
    assert message_to_json(dataset_pb2.Dataset(status=dataset_pb2.DATASET_STATUS_READY))["status"] == "ready"
    assert message_to_json(job_pb2.Job())["status"] is None


def test_spec_strings_become_enum_numbers_and_unknown_ones_are_400():
    assert enum_from_json(job_pb2.JobStatus.DESCRIPTOR, "cancelled", "status") == job_pb2.JOB_STATUS_CANCELLED
    with pytest.raises(HttpError) as caught:
        enum_from_json(job_pb2.JobStatus.DESCRIPTOR, "unspecified", "status")
    assert "queued" in caught.value.details["status"][0]


def test_timestamps_are_iso_utc_or_null():
    job = job_pb2.Job()
    job.started_at.FromJsonString("2026-01-02T03:04:05Z")
    data = message_to_json(job)
    assert data["started_at"] == "2026-01-02T03:04:05Z"
    assert data["completed_at"] is None


def test_unset_optional_scalars_and_messages_are_null_and_set_ones_keep_their_value():
    data = message_to_json(job_pb2.Job(final_cost=0.0, retry_count=0))
    assert data["final_cost"] == 0.0
    assert data["error_message"] is None and data["artifact_id"] is None
    assert data["current_metrics"] is None
    assert data["retry_count"] == 0


def test_non_finite_floats_become_null_so_the_answer_stays_valid_json():
    point = message_to_json(job_pb2.MetricPoint(training_loss=float("nan"), perplexity=float("inf"), step=3))
    assert point["training_loss"] is None and point["perplexity"] is None
    json.dumps(point, allow_nan=False)


def test_int64_stays_a_json_number_and_nested_messages_recurse():
    job = job_pb2.Job(total_steps=2**40, hyperparameters=job_pb2.Hyperparameters(rank=8))
    encoded = json.loads(json.dumps(message_to_json(job)))
    assert encoded["total_steps"] == 2**40
    assert encoded["hyperparameters"]["rank"] == 8


def test_structs_lists_and_maps_are_plain_json():
    dataset = dataset_pb2.Dataset(validation_errors=[dataset_pb2.ValidationError(line=3, code="bad_json")])
    dataset.statistics.update({"turns": {"min": 2}, "roles": ["user"]})
    dataset.sample_data.append({"turns": []})
    data = message_to_json(dataset)
    assert data["statistics"] == {"turns": {"min": 2}, "roles": ["user"]}
    assert data["sample_data"] == [{"turns": []}]
    assert data["validation_errors"][0] == {"line": 3, "code": "bad_json", "error": "", "suggestion": ""}
    summary = message_to_json(billing_pb2.GetCostSummaryResponse(by_type={"compute": 1.25}))
    assert summary["by_type"] == {"compute": 1.25}


def test_a_valid_job_body_becomes_the_request():
    message = json_to_message(JOB_BODY, job_pb2.CreateJobRequest, required=JOB_REQUIRED, uuids=("dataset_id",))
    assert message.gpu_config.count == 2
    assert message.hyperparameters.alpha == 32.0
    assert message.estimated_cost == 12.5


def test_every_wrong_type_and_missing_field_is_named():
    body = {**JOB_BODY, "gpu_config": {"type": 7, "count": 1.5}, "hyperparameters": {"batch_size": True}}
    body["dataset_id"] = "not-a-uuid"
    problems = _problems(body, required=JOB_REQUIRED, uuids=("dataset_id",))
    assert problems == {
        "dataset_id": ["Must be a UUID"],
        "gpu_config.type": ["Expected a string"],
        "gpu_config.count": ["Expected an integer"],
        "hyperparameters.batch_size": ["Expected a number"],
        "hyperparameters.rank": ["Required"],
    }


def test_a_missing_object_is_reported_once_not_for_each_of_its_fields():
    body = {k: v for k, v in JOB_BODY.items() if k != "gpu_config"}
    assert _problems(body, required=JOB_REQUIRED) == {"gpu_config": ["Required"]}
    assert _problems({**JOB_BODY, "gpu_config": [1]}, required=JOB_REQUIRED) == {"gpu_config": ["Expected an object"]}


def test_integers_out_of_range_and_arrays_of_the_wrong_type_are_400():
    assert _problems({"file_size": 2**70}, dataset_pb2.CreateDatasetRequest) == {
        "file_size": [f"Must be between {-(2**63)} and {2**63 - 1}"]
    }
    from brightrun.artifact.v1 import artifact_pb2

    assert _problems({"files": ["a", 1]}, artifact_pb2.GetDownloadUrlsRequest) == {"files[1]": ["Expected a string"]}


def test_nulls_are_ignored():
    message = json_to_message({"name": "n", "description": None}, dataset_pb2.CreateDatasetRequest)
    assert message.name == "n" and not message.HasField("description")


def test_unknown_and_hidden_fields_are_400_naming_them_and_the_fields_there_are():
    body = {"dataset_id": "x", "learning_rat": 1, "hyperparameters": {"learning_rat": 0.1}, "gpu_config": {"cost_per_gpu_hour": 0}}
    hidden = {"gpu_config.cost_per_gpu_hour", "gpu_config.gpu_memory_gb"}
    problems = _problems(body, job_pb2.CreateJobRequest, hidden=hidden)
    assert set(problems) == {"learning_rat", "hyperparameters.learning_rat", "gpu_config.cost_per_gpu_hour"}
    assert "learning_rate" in problems["hyperparameters.learning_rat"][0]
    assert problems["gpu_config.cost_per_gpu_hour"] == ["Unknown field; the fields here are: type, count"]


def test_a_number_past_its_wire_type_is_400_stating_the_fields_real_range():
    body = {"hyperparameters": {"epochs": 2**40}}
    ranges = {"hyperparameters.epochs": (1, 20)}
    assert _problems(body, job_pb2.CreateJobRequest, ranges=ranges) == {"hyperparameters.epochs": ["Must be between 1 and 20"]}


def test_bodies_nested_deeper_than_any_field_needs_are_400():
    with pytest.raises(HttpError) as caught:
        parse_json_object(b'{"a": ' + b"[" * 9 + b"]" * 9 + b"}")
    assert caught.value.code == "invalid_json" and "deep" in caught.value.details


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [(b"{not json", "not valid JSON"), (b"[1]", "must be a JSON object"), (b"", "empty")],
)
def test_bodies_that_are_not_json_objects_are_400(raw, fragment):
    with pytest.raises(HttpError) as caught:
        parse_json_object(raw)
    assert caught.value.status == 400 and caught.value.error == "Invalid JSON"
    assert fragment in caught.value.details


def test_an_optional_body_may_be_empty():
    assert parse_json_object(b"  ", optional=True) == {}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"[" * 5000 + b"]" * 5000, "nests"),
        (b'{"file_size": ' + b"9" * 5000 + b"}", "more than 30 digits"),
        (b'{"learning_rate": NaN}', "NaN is not a JSON number"),
        (b'{"learning_rate": Infinity}', "Infinity is not a JSON number"),
    ],
    ids=["deep", "digits", "nan", "infinity"],
)
def test_hostile_json_is_400_not_a_crash(raw, fragment):
    with pytest.raises(HttpError) as caught:
        parse_json_object(raw)
    assert caught.value.status == 400 and fragment in caught.value.details


def test_nul_in_a_string_and_infinite_floats_are_named():
    body = {"name": "a\x00b", "file_size": 10, "file_name": "lone \udc00 surrogate"}
    assert _problems(body, dataset_pb2.CreateDatasetRequest) == {
        "name": ["Must not contain NUL characters"],
        "file_name": ["Must be valid Unicode text: a \\ud800-\\udfff escape must be half of a surrogate pair"],
    }
    hyperparameters = {"learning_rate": float("inf"), "alpha": 10**400}
    assert _problems({"hyperparameters": hyperparameters}) == {
        "hyperparameters.learning_rate": ["Must be a finite number"],
        "hyperparameters.alpha": ["Must be a finite number"],
    }


def test_whole_numbers_in_struct_fields_are_json_integers_not_floats():
    record = billing_pb2.CostRecord()
    record.details.update({"epochs": 3, "line": 1, "rate": 2.5, "nested": [{"step": 12}]})
    details = message_to_json(record)["details"]
    assert json.dumps(details, sort_keys=True) == '{"epochs": 3, "line": 1, "nested": [{"step": 12}], "rate": 2.5}'


def test_struct_values_of_every_kind_read_as_json_and_a_number_json_cannot_carry_is_null():
    record = billing_pb2.CostRecord()
    record.details.update({"text": "a", "flag": False, "none": None, "big": 2.0**60, "list": [1, [2.5, {"x": "y"}]],
                           "loss": float("nan"), "grad": float("-inf")})
    details = message_to_json(record)["details"]
    assert details == {"text": "a", "flag": False, "none": None, "big": 2.0**60, "list": [1, [2.5, {"x": "y"}]],
                       "loss": None, "grad": None}
    json.dumps(details, allow_nan=False)
