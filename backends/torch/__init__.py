"""The PyTorch backend: an op library binding the IR's ops to ``nn.Module`` s, and the modules
that run relaxed choices (mixtures)."""
