# enas.nas: the ENAS micro (cell) search space (Pham, Guan, Zoph, Le & Dean, "Efficient Neural
# Architecture Search via Parameter Sharing", ICML 2018, §2.3 "Designing Convolutional Cells",
# Fig. 4-5; survey §2.2 and §3.4 on ENAS), following the authors' code melodyguan/enas
# (src/cifar10/micro_child.py, search mode) where the paper is silent.
#
# A cell has two inputs (the outputs of the two previous cells) and B = 5 computational nodes
# (the paper's B = 7 counts the two inputs as nodes 1 and 2). The controller samples, for each
# node, two previous nodes (independently, so one node may be taken twice: `x` and `y` here,
# two single-input picks) and one of 5 operations for each (identity, 3x3 and 5x5 separable
# convolutions, 3x3 average pooling, 3x3 max pooling); the node adds the two results. A cell is
# therefore prod_{i=0..4} ((i + 2) * 5)^2 = (720 * 5^5)^2 decisions, and the convolutional and
# reduction cells are sampled independently: (720 * 5^5)^4 = 2.6e25 in all. (§2.3 states
# (5 x (B - 2)!)^2 cells and (5 x (B - 2)!)^4 = 1.3e11 networks for B = 7; that expression
# counts 5 operations and (B - 2)! input patterns once per cell, not per node and input.)
#
# The cell output in the authors' code concatenates the nodes (and inputs) that no node used,
# then applies ReLU, a 1x1 conv back to C and BN (`final_conv`); which nodes are unused depends
# on the sampled inputs, and a graph cannot change shape with a decision, so here the 1x1 conv
# reads all B node outputs. The ops are darts_ops': ENAS's separable conv is ReLU, separable
# conv, BN twice (`_enas_conv`, stack_conv=2), i.e. sep_conv; pools and identity keep the C
# channels every state has. As in the search code (`_model`), a reduction layer first halves
# the previous output with a factorised reduction (doubling C) and then runs the reduction cell
# at stride 1; `_maybe_calibrate_size` aligns the cell inputs (factorised reduction when the
# resolutions differ, else ReLU-1x1 conv-BN when the width differs).

import darts_ops

let ENAS_OPS = [sep_conv_3x3, sep_conv_5x5, avg_pool_3x3, max_pool_3x3, skip_connect]

# micro_child.py `_maybe_calibrate_size`
block enas_calibrate(s0, s1, C: int) {
    let x = s0
    if s0.stride != s1.stride {
        x = factorized_reduce(s0, C)
    } else if s0.channels != C {
        x = relu_conv_bn(s0, C, k=1)
    }
    let y = s1.channels != C ? relu_conv_bn(s1, C, k=1) : s1
    return x, y
}

cell enas_cell(s0, s1, C: int, kind: str, nodes: int = 5) {
    let x0, y0 = enas_calibrate(s0, s1, C)
    let states = [x0, y0]
    for i in 0..nodes {
        let x = sum([choose ENAS_OPS @"{kind}.n{i}.x_op" (h, C)
                     for h in pick 1 of states @"{kind}.n{i}.x"])
        let y = sum([choose ENAS_OPS @"{kind}.n{i}.y_op" (h, C)
                     for h in pick 1 of states @"{kind}.n{i}.y"])
        states += x + y
    }
    return relu_conv_bn(concat(states[2:]), C, k=1)
}

# micro_child.py `_model` (search): a 3x3 conv stem to 3C + BN, layers + 2 cells with the
# reductions at layers // 3 and 2 * (layers // 3) + 1, then ReLU, global average pooling, linear.
# The search script uses C = 20 and layers = 6 (scripts/cifar10_micro_search.sh).
space enas(C: int = 20, layers: int = 6, classes: int = 10, nodes: int = 5, in_channels: int = 3) {
    input x: image(in_channels)
    let stem = batch_norm(conv2d(x, 3 * C, k=3))
    let s0 = stem
    let s1 = stem
    let c = C
    let pool_distance = layers // 3
    for i in 0..layers + 2 {
        if i == pool_distance or i == 2 * pool_distance + 1 {
            c = 2 * c
            s0, s1 = s1, factorized_reduce(s1, c)
            s0, s1 = s1, enas_cell(s0, s1, c, "reduce", nodes)
        } else {
            s0, s1 = s1, enas_cell(s0, s1, c, "normal", nodes)
        }
    }
    output logits = linear(global_avg_pool(relu(s1)), classes)
}
