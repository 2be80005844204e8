"""What the seed-comparing benches share (trustvis.bench.common): mean ± std and the verdict rule."""

from __future__ import annotations

import math

import pytest

from trustvis.bench.common import check_methods, mean_std, pm, seed_verdict


def test_mean_std_and_pm():
    s = mean_std([0.5, 0.7, float("nan")])
    assert s["n"] == 2 and s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(math.sqrt(0.02))
    assert math.isnan(mean_std([0.3])["std"]) and pm(mean_std([0.3])) == "30.0"
    assert pm(s) == "60.0 ± 14.1" and pm(mean_std([])) == "–"


def test_a_difference_counts_only_beyond_twice_the_seeds_std():
    a, b = {"mean": 0.70, "std": 0.01}, {"mean": 0.60, "std": 0.02}
    assert seed_verdict(a, b, "x", "y", "mAP").startswith("x beats y on mAP (70.0 ± 1.0 vs 60.0 ± 2.0")
    assert seed_verdict(b, a, "y", "x", "mAP").startswith("y does not beat x")
    assert "ties" in seed_verdict({"mean": 0.70, "std": 0.06}, b, "x", "y", "mAP")  # 0.10 <= 2 x 0.06
    # lower is better (error rates): the smaller mean wins
    assert seed_verdict(b, a, "y", "x", "ACER", lower_is_better=True).startswith("y beats x on ACER")
    one = seed_verdict({"mean": 0.7, "std": float("nan")}, b, "x", "y", "mAP")
    assert "one seed" in one


def test_check_methods_names_the_valid_ones():
    check_methods(["vabal", "entropy"], "active", "a query strategy")
    with pytest.raises(ValueError, match="'rollback' is not a query strategy; choose from .*vabal"):
        check_methods(["rollback"], "active", "a query strategy")
