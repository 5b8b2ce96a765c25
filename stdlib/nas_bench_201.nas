# nas_bench_201.nas: the NAS-Bench-201 cell space (Dong & Yang, ICLR 2020), as the benchmark's
# TinyNetwork (C=16, N=5): a 4-node cell whose 6 edges each pick one of 5 ops, one cell shared
# by all 15 cell positions, and ResNet basic blocks for the two reductions. 5^6 = 15,625.

import darts_ops

# ReLU -> conv k×k (no bias) -> BN; the ReLU is shared between the two conv candidates (CSE).
op conv_bn(x: image, C: int, k: int = 1, stride: int = 1, padding: int = (k - 1) // 2)
    -> image(C, x.stride * stride)
block nor_conv_1x1(x, C: int, stride: int = 1) { return conv_bn(relu(x), C, k=1, stride=stride) }
block nor_conv_3x3(x, C: int, stride: int = 1) { return conv_bn(relu(x), C, k=3, stride=stride) }

# Edge labels read "j<-i": the op from node i into node j, as in the benchmark's arch strings.
let NB201_OPS = [none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3]

cell nb201_cell(x, C: int) {
    let nodes = [x]
    for j in 1..4 {
        nodes += sum([choose NB201_OPS @"{j}<-{i}" (nodes[i], C) for i in 0..j])
    }
    return nodes[3]
}

# ResNet basic block with stride 2: ReLU-conv-BN twice, plus avg-pool + 1x1 conv shortcut.
block resnet_basic_block(x, C: int) {
    let b = relu_conv_bn(relu_conv_bn(x, C, k=3, stride=2, padding=1), C, k=3, padding=1)
    return b + conv2d(avg_pool(x, k=2, stride=2, padding=0), C, k=1)
}

space nas_bench_201(C: int = 16, N: int = 5, classes: int = 10, in_channels: int = 3) {
    input x: image(in_channels)
    let s = batch_norm(conv2d(x, C, k=3))
    for stage, width in enumerate([C, 2 * C, 4 * C]) {
        if stage > 0 {
            s = resnet_basic_block(s, width)
        }
        for n in 0..N {
            s = nb201_cell(s, width)
        }
    }
    output logits = linear(global_avg_pool(relu(batch_norm(s))), classes)
}
