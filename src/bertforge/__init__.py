"""bertforge: a complete, fast, hackable BERT in PyTorch, compatible with Hugging Face checkpoints."""
