# nasnet.nas: the NASNet search space (Zoph, Vasudevan, Shlens & Le, "Learning Transferable
# Architectures for Scalable Image Recognition", CVPR 2018, §3, Fig. 2-4; survey §2.2 on
# cell-based spaces), with the CIFAR-10 network of §3/§4.1 (N normal cells between reductions),
# following tensorflow/models research/slim/nets/nasnet/ (nasnet.py, nasnet_utils.py) where
# the paper is silent.
#
# A cell reads the two previous cell outputs h_{i-1}, h_i (index 0 and 1 here, as in DARTS; the
# slim code lists them the other way round) and builds B = 5 blocks. For each block the
# controller (§3, Fig. 3) takes five steps: select a first hidden state, select a second one
# (each from the cell inputs and the earlier blocks, independently, so the same state may be
# selected twice), select an operation for each from the 13 of nasnet_ops, and combine them.
# Here the two selections are two single-input picks `left` and `right`, each with its own
# op choice, so a cell is sum_{b<5} of (n_b * 13)^2 decisions with n_b = b + 2 states:
# prod_{b=0..4} ((b + 2) * 13)^2 = (720 * 13^5)^2 per cell, and normal and reduction cells are
# searched separately (§3): (720 * 13^5)^4 = 5.1e33 in all. The count is of controller
# decisions: since the combination is a sum, swapping left and right gives the same network.
#
# Deviations, both forced by what a .nas file can express:
# * the combine step: §3 lets the controller choose element-wise addition or concatenation; the
#   published NASNet-A cells and the public code (nasnet_utils.py, "Combine hidden states using
#   'add'") only add, and a concatenating block would change the width of every later state
#   with the decision, which no op choice can (its candidates share one type). Blocks add.
# * the cell output: NASNet concatenates the hidden states that no block selected. Which states
#   those are depends on the picks, and a graph cannot change shape with a decision; the cell
#   output here concatenates all B block outputs (DARTS's convention), 5C channels.
# In reduction cells the ops applied to the cell inputs have stride 2 (nasnet_utils.py
# `original_input_left`), and h_{i-1} is brought to h_i's resolution and width as `_cell_base`
# does (ReLU + factorised reduction, or ReLU-1x1 conv-BN), h_i by ReLU-1x1 conv-BN.

import nasnet_ops

# nasnet_utils.py `_reduce_prev_layer`: align h_{i-1} with h_i
block nasnet_prev(s0, s1, C: int) {
    let out = s0
    if s0.stride != s1.stride {
        out = factorized_reduce(s0, C)
    } else if s0.channels != C {
        out = relu_conv_bn(s0, C, k=1)
    }
    return out
}

cell nasnet_cell(s0, s1, C: int, reduce: bool, blocks: int = 5) {
    let kind = reduce ? "reduce" : "normal"
    let states = [nasnet_prev(s0, s1, C), relu_conv_bn(s1, C, k=1)]
    for b in 0..blocks {
        let left = sum([choose NASNET_OPS @"{kind}.b{b}.left_op" (
                            h, C, stride=reduce and h.index < 2 ? 2 : 1
                        )
                        for h in pick 1 of states @"{kind}.b{b}.left"])
        let right = sum([choose NASNET_OPS @"{kind}.b{b}.right_op" (
                             h, C, stride=reduce and h.index < 2 ? 2 : 1
                         )
                         for h in pick 1 of states @"{kind}.b{b}.right"])
        states += left + right
    }
    return concat(states[2:])
}

# CIFAR-10 network (nasnet.py `cifar_config`, `_build_nasnet_base`): a 3x3 conv stem with
# stem_multiplier * C filters, then N normal cells, a reduction cell (2C), N normal cells, a
# reduction cell (4C), N normal cells; ReLU, global average pooling and a linear classifier.
space nasnet(C: int = 32, N: int = 6, classes: int = 10, stem_multiplier: int = 3, blocks: int = 5,
             in_channels: int = 3) {
    input x: image(in_channels)
    let stem = batch_norm(conv2d(x, stem_multiplier * C, k=3))
    let s0 = stem
    let s1 = stem
    let c = C
    for stage in 0..3 {
        if stage > 0 {
            c = 2 * c
            s0, s1 = s1, nasnet_cell(s0, s1, c, true, blocks)
        }
        for n in 0..N {
            s0, s1 = s1, nasnet_cell(s0, s1, c, false, blocks)
        }
    }
    output logits = linear(global_avg_pool(relu(s1)), classes)
}
