"""The learning-rate schedule's factors and the default spacing of metric points."""

from __future__ import annotations

import math

import pytest

from services.trainer_agent.schedule import MOST_METRIC_POINTS, lr_factor, metric_interval, warmup_steps


def test_warmup_rises_linearly_to_the_peak():
    factors = [lr_factor(step, total_steps=100, warmup=4, kind="cosine") for step in range(5)]

    assert factors == [0.25, 0.5, 0.75, 1.0, 1.0]


def test_cosine_decays_through_one_half_towards_zero():
    def factor(step):
        return lr_factor(step, total_steps=110, warmup=10, kind="cosine")

    assert factor(10) == 1.0
    assert factor(60) == pytest.approx(0.5)
    assert factor(35) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert factor(109) == pytest.approx(0.5 * (1 + math.cos(math.pi * 99 / 100)))
    assert factor(500) == 0.0


def test_linear_decays_in_equal_steps_to_zero():
    factors = [lr_factor(step, total_steps=6, warmup=2, kind="linear") for step in range(7)]

    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_warmup_is_given_in_steps_or_as_a_ratio_rounded_up():
    assert warmup_steps(total_steps=200, steps=7, ratio=0.0) == 7
    assert warmup_steps(total_steps=200, steps=0, ratio=0.1) == 20
    assert warmup_steps(total_steps=15, steps=0, ratio=0.1) == 2


def test_metric_points_are_every_step_on_small_jobs_and_bounded_on_large_ones():
    assert [metric_interval(steps) for steps in (1, 40, MOST_METRIC_POINTS)] == [1, 1, 1]
    assert metric_interval(MOST_METRIC_POINTS + 1) == 2
    for steps in (1001, 5000, 123_457, 2_000_000):
        interval = metric_interval(steps)
        assert MOST_METRIC_POINTS // 2 <= steps // interval <= MOST_METRIC_POINTS
