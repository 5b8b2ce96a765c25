"""Lowering from the IR to backends (torch.fx); filled in by the backend issue."""
