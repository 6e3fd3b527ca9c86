"""services.common.logs: the human format stays the default, JSON lines parse
and carry the context's ids, request ids and traceparents are read safely."""

from __future__ import annotations

import io
import json
import logging

import pytest

from services.common import logs


def _logged(chosen: str, emit) -> str:
    stream = io.StringIO()
    logger = logging.getLogger(f"test.logs.{chosen}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    handler = logs.handler("job_svc", chosen, stream)
    logger.addHandler(handler)
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_human_is_the_default_and_another_value_is_refused_naming_the_variable():
    assert logs.log_format({}) == "human"
    assert logs.log_format({"BRIGHTRUN_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(SystemExit, match="BRIGHTRUN_LOG_FORMAT='yaml' must be one of human, json"):
        logs.log_format({"BRIGHTRUN_LOG_FORMAT": "yaml"})


def test_a_json_line_carries_the_context_ids_and_the_calls_extra():
    def emit(logger):
        with logs.request_context("req-1", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"):
            logger.info("job %s moved", "j", extra={"job_id": "job-7"})
            with logs.bind(dataset_id="ds-3"):
                try:
                    raise ValueError("boom")
                except ValueError:
                    logger.exception("validation failed")
        logger.warning("outside any request")

    first, second, third = (json.loads(line) for line in _logged("json", emit).splitlines())
    assert first["message"] == "job j moved" and first["level"] == "INFO" and first["service"] == "job_svc"
    assert first["request_id"] == "req-1" and first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["job_id"] == "job-7" and "dataset_id" not in first and first["timestamp"].endswith("+00:00")
    assert second["dataset_id"] == "ds-3" and "ValueError: boom" in second["exception"]
    assert second["level"] == "ERROR" and second["request_id"] == "req-1"
    assert third["request_id"] == "" and third["trace_id"] == "" and third["logger"] == "test.logs.json"


def test_the_human_line_is_readable_and_names_the_request():
    def emit(logger):
        logger.info("plain")
        with logs.request_context("req-9", None):
            logger.info("in a request")

    plain, in_request = _logged("human", emit).splitlines()
    assert plain.endswith(" INFO test.logs.human: plain")
    assert in_request.endswith(" INFO test.logs.human: in a request [request req-9]")


def test_ids_and_traceparents_are_read_safely():
    assert logs.request_id_from("abc-123_X.y:z") == "abc-123_X.y:z"
    for bad in (None, "", "a b", "line\nbreak", "x" * 129, "é"):
        made = logs.request_id_from(bad)
        assert made != bad and len(made) == 32
    assert logs.trace_id_from("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == \
        "0af7651916cd43dd8448eb211c80319c"
    for bad in (None, "garbage", "00-" + "0" * 32 + "-b7ad6b7169203331-01", "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01"):
        assert logs.trace_id_from(bad) == ""
    with logs.request_context("r", "not a traceparent"):
        assert logs.outgoing_metadata() == (("x-request-id", "r"),)
    assert logs.outgoing_metadata() == ()
