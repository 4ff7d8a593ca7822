"""Store: read MindSpore dump trees (tensors, graphs, source lines)."""
