"""The accuracy guide's checklist as data: each item, how msdbg detects it, or why it cannot.

Loss-curve items are judged on the loss of every step kept by the flight recorder (engine/losscurve.py); runs
with --no-record do without them.

README's checklist table is generated from this (``markdown_table``) and a test keeps the two equal, and checks
that every condition and rule named here exists.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    """One checklist item: what detects it (conditions of ``watch recommended``, diagnose rules) and where it is
    shown working, or the reason it is out of reach."""

    group: str
    item: str
    conditions: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    shown_by: str = ""
    not_detectable: str = ""


CHECKLIST: tuple[Item, ...] = (
    Item("Dataset", "too many missing values", ("tensor_overflow",), ("missing_values_in_data",),
         "tests/test_checklist.py (missing)"),
    Item("Dataset", "classes unbalanced", ("label_imbalance",), ("class_imbalance",),
         "tests/test_checklist.py (imbalanced)"),
    Item("Dataset", "abnormal values", ("tensor_overflow", "input_turbulence", "tensor_too_large"),
         ("missing_values_in_data", "abnormal_input", "unnormalised_input"),
         "tests/test_checklist.py (missing, abnormal); demos/unnormalised_input.py"),
    Item("Dataset", "too few training samples",
         not_detectable="a property of the data set's size, not of any tensor a step computes"),
    Item("Dataset", "incorrect labels", ("label_out_of_range",), ("wrong_labels",),
         "tests/test_checklist.py (bad_labels); wrong labels inside the class range look like any other label"),
    Item("Hyperparameters", "learning rate too high", ("gradient_too_large", "tensor_overflow"),
         ("learning_rate_too_high",), "demos/high_lr.py"),
    Item("Hyperparameters", "learning rate too low", ("weight_change_too_small", "weight_not_changed"),
         ("learning_rate_too_low", "no_parameter_updates"),
         "tests/test_checklist.py (lr_low, with one explicit watchpoint: weight_change_too_small); a learning rate "
         "of 0 is the extreme case (demos/frozen_layer.py)"),
    Item("Hyperparameters", "too few / too many epochs",
         not_detectable="needs the validation curve over whole epochs; msdbg sees training steps"),
    Item("Hyperparameters", "batch size too large",
         not_detectable="a large batch trains without any abnormal tensor; its effect shows only in final accuracy"),
    Item("Hyperparameters", "loss_scale improper", ("loss_scale_improper",), ("loss_scale_improper",),
         "tests/test_real_models.py (test_o2_loss_scaler_skips_are_reported_as_such: a DynamicLossScaler starting "
         "at 2**22 under O2; the watchpoint with consecutive_skips_ge=3)"),
    Item("Graph structure", "weights improperly shared", (), ("shared_weight",),
         "tests/test_checklist.py (shared)"),
    Item("Graph structure", "weights improperly frozen", ("weight_not_changed",), ("frozen_parameters",),
         "demos/frozen_layer.py"),
    Item("Graph structure", "nodes improperly connected", ("gradient_vanishing",), ("disconnected_parameter",
                                                                                "no_gradient_path"),
         "tests/test_checklist.py (disconnected: a side branch whose output is dropped, found from the graph)"),
    Item("Graph structure", "node mode incorrect (train/eval)",
         not_detectable="BatchNorm/Dropout in the wrong mode compute valid values; needs the intended mode"),
    Item("Graph structure", "loss function incorrect", (), ("sigmoid_into_logits_loss", "softmax_into_logits_loss",
                                                            "broadcast_into_loss"),
         "demos/wrong_loss_api.py; tests/test_checklist.py (softmax_loss); tests/test_broadcast_loss.py"),
    Item("Graph structure", "integer division where float was meant", (), ("integer_division",),
         "demos/integer_division.py; tests/test_checklist.py (int_division; coarse_labels and int_legit stay "
         "silent)"),
    Item("Data processing", "not normalised or standardised", ("tensor_too_large",), ("unnormalised_input",),
         "demos/unnormalised_input.py; tests/test_checklist.py (unnormalised)"),
    Item("Data processing", "processing differs from the training set's",
         not_detectable="needs the evaluation pipeline beside the training one: compare two runs' input tensors"),
    Item("Data processing", "dataset not shuffled", ("label_unshuffled",), ("unshuffled_data",),
         "tests/test_checklist.py (unshuffled)"),
    Item("API usage", "MindSpore API or constructor constraints broken",
         not_detectable="MindSpore itself raises at graph compile time with the offending line"),
    Item("Weight initialisation", "all initial weights 0", ("weight_initialization",), ("zero_initialization",),
         "demos/zero_init.py"),
    Item("Weight initialisation", "symmetry not broken (constant initial weights)", ("weight_symmetric",),
         ("symmetric_initialization",), "demos/constant_init.py; tests/test_checklist.py (symmetric_init)"),
    Item("Weight initialisation", "initial scale saturates the activation", ("weight_init_scale", "activation_range"),
         ("init_scale_saturates",), "demos/saturating_init.py; tests/test_checklist.py (saturating_init)"),
    Item("Weight initialisation", "initial weights differ between ranks", ("rank_weight_mismatch",),
         ("rank_weight_mismatch",), "tests/test_multirank.py"),
    Item("Loss curve", "loss NaN or Inf", ("tensor_overflow",), ("loss_nonfinite",),
         "demos/nan_log.py; tests/test_losscurve.py"),
    Item("Loss curve", "loss exploding", (), ("loss_exploding",),
         "demos/exploding_loss.py; tests/test_checklist.py (exploding); tests/test_losscurve.py"),
    Item("Loss curve", "loss not converging (flat)", (), ("loss_not_converging",),
         "tests/test_checklist.py (flat); tests/test_losscurve.py"),
    Item("Loss curve", "loss oscillating", (), ("loss_oscillating",),
         "tests/test_checklist.py (oscillating); tests/test_losscurve.py"),
    Item("Loss curve", "loss exactly 0", ("tensor_all_zero",), ("loss_zero",),
         "demos/label_leakage.py; tests/test_losscurve.py"),
)


def markdown_table() -> str:
    """README's checklist table."""
    lines = ["| checklist item | detected by | shown by |", "|---|---|---|"]
    for item in CHECKLIST:
        if item.not_detectable:
            how, shown = "not detectable", item.not_detectable
        else:
            parts = [f"`{name}`" for name in item.conditions]
            parts += [f"diagnose `{rule}`" for rule in item.rules]
            how, shown = ", ".join(parts), item.shown_by
        lines.append(f"| {item.group}: {item.item} | {how} | {shown} |")
    return "\n".join(lines)
