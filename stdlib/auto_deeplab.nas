# auto_deeplab.nas: the hierarchical search space of Auto-DeepLab (Liu, Chen, Schroff, Adam,
# Hua, Yuille & Fei-Fei, "Auto-DeepLab: Hierarchical Neural Architecture Search for Semantic
# Image Segmentation", CVPR 2019, §3.1 cell level, §3.2 network level, Fig. 1; survey §2.2 on
# cell-based and hierarchical spaces). Where the paper is silent the cell follows DARTS
# (quark0/darts, which §3.1 builds on) and the network follows tensorflow/models
# research/deeplab/core/nas_network.py (the released Auto-DeepLab network: the cell before the
# previous one is the second cell input; a halving is a stride, a doubling a bilinear resize).
#
# Cell level (§3.1). One cell, shared by every layer and resolution, of B = 5 blocks; block i
# adds two distinct states of {H^{l-1}, H^{l-2}, H_1 .. H_{i-1}} (the two strongest inputs, as
# the paper decodes), each through one of the DARTS operations (3x3 and 5x5 depthwise-separable
# convs, 3x3 and 5x5 atrous convs with rate 2, 3x3 average and max pooling, skip connection;
# "no connection" is the zero that relaxation adds). The cell output concatenates the B blocks.
# prod_{i<B} C(i + 2, 2) * 7^(2B) cells: 2700 * 7^10 for B = 5.
#
# Network level (§3.2). A stem of three 3x3 convs (two with stride 2) brings the input to
# downsampling rate 4; then L = 12 layers, each with one cell per rate s in {4, 8, 16, 32} that
# the stem can reach (rate s at layer l needs s <= 4 * 2^l). The cell at (l, s) reads one cell of
# layer l - 1 at rate s/2, s or 2s (`pick 1`, the paper's beta: eq. 6 weights the three
# candidates), so an architecture is one path through the trellis, and a head (§3.2: one per
# rate of the last layer, `pick 1`) ends the path. The cell's second input is the cell before
# the previous one on the same path (nas_network.py `prev_layer=cell_outputs[-2]`): picked with
# the same label as the first input, which makes it the same decision. (Eq. 6 relaxes the search
# with the cell at rate s of layer l - 2 instead; a path of discrete cells has that cell only
# when the path stays at rate s.) Widths: F * s / 4 channels per block, so B * F * s / 4 per cell
# (§3.2: "every time the spatial resolution halves, the filter number doubles"; F = 8 in the
# search, §4.1).
#
# Inputs at another rate are brought to the cell's rate before the DARTS preprocessing:
# one factorised reduction per halving (the DARTS/NASNet treatment of a higher-resolution cell
# input), a bilinear `upsample` then ReLU-1x1 conv-BN for a doubling or more.
#
# The head: §3.2 attaches an ASPP module at every rate of the last layer; here a head is
# ReLU-3x3 conv-BN-ReLU then a 1x1 classifier and a bilinear upsampling to the input
# resolution (the ASPP branches are not reproduced).
#
# Counting: the trellis picks are decided everywhere, so count() also counts decisions of cells
# off the chosen path (as for densenas): 2700 * 7^10 * 4 * 12 * 36^(L - 3) * 4 for L >= 3.

import darts_ops

let RATES = [4, 8, 16, 32]

# bring x to downsampling rate `rate` and C channels
block adl_prep(x, C: int, rate: int) {
    let y = x
    if x.stride < rate {
        let s = x.stride
        for i in 0..8 {
            if s < rate {
                y = factorized_reduce(y, C)
                s = 2 * s
            }
        }
    } else if x.stride > rate {
        y = relu_conv_bn(upsample(x, factor=x.stride // rate), C, k=1)
    } else {
        y = relu_conv_bn(x, C, k=1)
    }
    return y
}

# p0: H^{l-2}, already brought to the cell's rate and width (adl_prep); h1: H^{l-1}
cell adl_cell(h1, p0, C: int, rate: int, blocks: int = 5) {
    let states = [p0, adl_prep(h1, C, rate)]
    for i in 0..blocks {
        states += sum([choose DARTS_OPS @"n{i}.op{h.index}" (h, C)
                       for h in pick 2 of states @"n{i}.in"])
    }
    return concat(states[2:])
}

block adl_head(x, classes: int) {
    let h = relu(batch_norm(conv2d(relu(x), x.channels, k=3)))
    return upsample(conv2d(h, classes, k=1, bias=true), factor=x.stride)
}

space auto_deeplab(L: int = 12, F: int = 8, blocks: int = 5, classes: int = 19, stem: int = 64,
                   in_channels: int = 3) {
    assert L >= 1, "the network needs at least one layer"
    input x: image(in_channels)
    let t0 = relu(batch_norm(conv2d(x, stem, k=3, stride=2)))
    let t1 = relu(batch_norm(conv2d(t0, stem, k=3)))
    let t2 = relu(batch_norm(conv2d(t1, 2 * stem, k=3, stride=2)))
    # one [rate, output, the outputs its input pick chose from, that pick's label] per cell of
    # the previous layer; the stem is layer 0
    let prev = [[4, t2, [t2], "L0.s4"]]
    for l in 1..L + 1 {
        let cur = []
        for s in RATES {
            let preds = [p for p in prev if p[0] == s or 2 * p[0] == s or p[0] == 2 * s]
            if len(preds) > 0 {
                let C = F * s // 4
                # H^{l-2}: the output that the picked cell itself picked (the same labels, so
                # the same decisions), brought to rate s inside that pick
                let h = sum([adl_cell(o,
                                      sum([adl_prep(q, C, s)
                                           for q in pick 1 of preds[o.index][2]
                                                    @"{preds[o.index][3]}"]),
                                      C, s, blocks)
                             for o in pick 1 of [p[1] for p in preds] @"L{l}.s{s}"])
                cur += [[s, h, [p[1] for p in preds], "L{l}.s{s}"]]
            }
        }
        prev = cur
    }
    output logits = sum(pick 1 of [adl_head(p[1], classes) for p in prev] @"head")
}
