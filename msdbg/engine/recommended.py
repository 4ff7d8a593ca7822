"""``watch recommended``: a default set of watchpoints that catches the accuracy guide's symptoms.

Chosen to stay silent on healthy training: biases and BatchNorm betas start at zero by design, so the
initialisation check only looks at parameters named ``*weight`` that an optimizer updates (not accumulation
buffers such as ``acc.*.weight``); saturation checks are per activation type; ``weight_frozen`` counts only
steps where the optimizer-updated weights changed (silent during lr warm-up from 0 and accumulation steps);
``loss_scale_improper``'s defaults leave room for a dynamic scaler's first skipped steps. Extend by adding rows.
"""

from __future__ import annotations

#: (condition, parameters, target pattern or None)
RECOMMENDED: tuple[tuple[str, dict[str, str], str | None], ...] = (
    ("tensor_overflow", {}, None),
    ("weight_initialization", {"zero_percentage_ge": "100"}, "re:weight$"),
    # Constant-initialised units (symmetry not broken), and initial scales far above He's (what saturates a
    # Sigmoid/Tanh from the first step: diagnose joins the two).
    ("weight_symmetric", {}, "re:weight$"),
    ("weight_init_scale", {}, "re:weight$"),
    ("gradient_vanishing", {"abs_mean_lt": "1e-9"}, None),
    ("gradient_too_large", {"abs_mean_gt": "1e3"}, None),
    ("weight_frozen", {}, None),
    ("loss_scale_improper", {}, None),
    # Sigmoid/Tanh saturation: under 10% of outputs away from the flat ends.
    ("activation_range", {"range_start_inclusive": "0.01", "range_end_inclusive": "0.99",
                          "range_percentage_lt": "10"}, "Sigmoid"),
    ("activation_range", {"range_start_inclusive": "-0.99", "range_end_inclusive": "0.99",
                          "range_percentage_lt": "10"}, "Tanh"),
    # Dead ReLU: (almost) every output is 0.
    ("activation_range", {"range_start_inclusive": "0", "range_end_inclusive": "0",
                          "range_percentage_gt": "99.99"}, "ReLU"),
    # The data: features not normalised, a batch far outside the range of earlier ones.
    ("input_too_large", {"abs_mean_gt": "100"}, None),
    ("input_turbulence", {}, None),
    # The class labels a loss reads: out of range, a class (nearly) absent, batches sorted by class.
    ("label_out_of_range", {}, None),
    ("label_imbalance", {}, None),
    ("label_unshuffled", {}, None),
)
