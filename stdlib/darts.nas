# darts.nas: the DARTS CNN search space (Liu et al., "DARTS: Differentiable Architecture
# Search", ICLR 2019; survey §3.2 on cell-based spaces), following quark0/darts
# cnn/model_search.py (search network) and cnn/model.py NetworkCIFAR (evaluation network).
#
# A cell has two input states and `steps` intermediate nodes; node i sums two distinct earlier
# states, each through one of the seven non-zero DARTS ops. All normal cells share one set of
# decisions and all reduction cells another, so the space has (180 * 7^8)^2 architectures.
# The evaluation network's auxiliary head (`auxiliary`) and drop path (`drop_path`, the maximum
# probability; training loops scale it with the epoch as DARTS does) are off by default.

import darts_ops

# DARTS drop path on an edge's op (cnn/model.py Cell._compile/forward), when it is on.
block dropped(y, p: float) {
    let out = y
    if p > 0.0 {
        out = drop_path(y, p)
    }
    return out
}

cell darts_cell(s0, s1, C: int, reduce: bool, reduce_prev: bool, steps: int = 4,
                multiplier: int = 4, drop: float = 0.0) {
    let kind = reduce ? "reduce" : "normal"
    # preprocessing aligns s0 when the previous cell halved the resolution
    let p0 = reduce_prev ? factorized_reduce(s0, C) : relu_conv_bn(s0, C, k=1)
    let states = [p0, relu_conv_bn(s1, C, k=1)]
    for i in 0..steps {
        states += sum([dropped(choose DARTS_OPS @"{kind}.n{i}.op{h.index}" (
                                   h, C, stride=reduce and h.index < 2 ? 2 : 1
                               ),
                               drop)
                       for h in pick 2 of states @"{kind}.n{i}.in"])
    }
    return concat(states[len(states) - multiplier:])
}

space darts(C: int = 16, layers: int = 8, classes: int = 10, steps: int = 4, multiplier: int = 4,
            stem_multiplier: int = 3, auxiliary: bool = false, in_channels: int = 3,
            drop_path: float = 0.0) {
    input x: image(in_channels)
    let stem = batch_norm(conv2d(x, stem_multiplier * C, k=3))
    let s0 = stem
    let s1 = stem
    let c = C
    let reduce_prev = false
    for i in 0..layers {
        let reduce = i == layers // 3 or i == 2 * layers // 3
        if reduce {
            c = 2 * c
        }
        s0, s1 = s1, darts_cell(s0, s1, c, reduce, reduce_prev, steps, multiplier, drop_path)
        reduce_prev = reduce
        if auxiliary and i == 2 * layers // 3 {
            output aux = auxiliary_head_cifar(s1, classes)
        }
    }
    output logits = linear(global_avg_pool(s1), classes)
}
