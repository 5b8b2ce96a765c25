"""Lowering from the IR to torch.fx (:mod:`nasc.lowering.fx`): a resolved graph becomes a
``GraphModule`` whose nodes call the backend's op modules."""
