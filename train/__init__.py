"""Training: GRPO on the benchmark's train split, its episodes as the reward environment."""
