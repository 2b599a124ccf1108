"""Fin3R distillation training: teachers, pseudo-labels, losses and the training loop (no ROS)."""
