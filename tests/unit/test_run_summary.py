"""The run summary's shared rules: perplexity, and the training loss curve thinned for the events."""

from __future__ import annotations

import math

from services.common.run_summary import perplexity, thin_curve


def test_perplexity_is_exp_of_the_loss_and_stays_finite():
    assert perplexity(1.9) == math.exp(1.9)
    assert perplexity(1e6) == math.exp(50.0)


def test_a_short_curve_is_kept_whole():
    assert thin_curve([(1, 3.0), (2, 2.0)], most=2) == [[1, 3.0], [2, 2.0]]


def test_a_long_curve_is_merged_into_means_at_the_last_step_of_each_group():
    curve = [(step, float(step)) for step in range(1, 11)]

    assert thin_curve(curve, most=4) == [[2, 1.5], [5, 4.0], [7, 6.5], [10, 9.0]]
    assert len(thin_curve([(step, 1.0) for step in range(1, 1001)], most=200)) == 200
