# densenas.nas: the densely connected search space of DenseNAS (Fang et al., "Densely Connected
# Search Space for More Flexible Neural Architecture Search", CVPR 2020, §3.1), in the MBV2
# search configuration of the authors' code (JaminFong/DenseNAS,
# configs/imagenet_search_cfg_mbv2.yaml; models/search_space_base.py, search_space_mbv2.py).
#
# Network level (§3.1.3). Blocks B_0 .. B_N of increasing width, grouped in stages (`stages`);
# every stage has one resolution (`strides`, the down-sampling factor of the block relative to
# the input; 112, 56, 28, 14, 7 at 224x224). B_0 is the fixed first two layers (§3.1.3: a 3x3
# stride-2 conv, then an MBConv with k=3 and expansion 1); B_1 .. B_N are searched; B_{N+1} is
# the final 1x1 conv block (to `last` channels, one stage after the last). Each block reads one
# of the blocks that connect to it (`pick 1 of`), so one architecture is one path of blocks
# from B_0 to the final block; blocks off the path do not reach the output. (§3.1.3 says the
# second layer outputs 24x56x56; the code's MBV2 configuration, followed here, keeps it at
# 16x112x112 (`head_dim` 16, stride 1) and reaches 24x56x56 in B_1, whose only input is B_0.)
#
# Connection rule (§3.1.3: C_ij exists when j - i <= m and H_i / H_j <= 2), as the authors'
# code builds it (`_create_output_list`): block i connects to i+1, i+2, ... up to i+m, and stops
# at the first block that is more than one stage later or whose resolution is neither the
# same nor half of its own. With the MBV2 defaults (m = 4) there are 54 connections.
#
# Block level (§3.1.2). A block is head layers then stacking layers. There is one head layer
# per incoming connection: a searchable mixture of the six MBConv candidates (k in {3, 5, 7},
# e in {3, 6}; no skip: the head changes width or resolution) that brings that input to the
# block's width and resolution (stride 2 when the resolution halves). The head layers are
# written here in the space, as an op choice inside the input choice, `choose HEADS (h, ...)
# for h in pick 1 of preds`, not as an `align` policy: each head exists exactly when its input
# is picked, gets its own decision, and under relaxation becomes eq. 4's H_ik weighted by the
# connection's p (beta normalised over the source block's outgoing connections, eq. 3; the
# "densenas" method of nasc.compile). The stacking layers (`layers` per block: 3, and 0 in the
# last three blocks, as in the code's `num_layers`) each pick one of the six MBConvs or `skip`
# (Table 1), so skip searches the depth.
#
# The final block has one 1x1 conv-BN-ReLU6 branch per incoming connection (the code's
# Conv1_1_Block, its branches weighted by beta too); then global pooling and the classifier.
#
# Counting: each label decides independently, so count() also counts different decisions of
# blocks that are off the chosen path (as for any module that no pick reads), and an
# architecture decides them too, although they do not change the network; the number of
# distinct single-path networks is smaller (tests/stdlib/test_densenas.py computes both).
#
# `classes` defaults to ImageNet's 1000 (the code searches on a 100-class subset: classes=100).
# Architecture.load("densenas_c") is the published DenseNAS-C (the code's output/log.txt):
# 6,134,144 parameters and 360,808,256 multiply-adds at 224x224 (the log: 6.13 M, 360.81 M).

import mobile_ops

# A stacking layer that is removed (Table 1, "skip"): the identity.
block skip(x: image, C: int) {
    assert x.channels == C, "skip keeps the width"
    return x
}

let HEADS = [mbconv[k=3, e=3], mbconv[k=3, e=6], mbconv[k=5, e=3], mbconv[k=5, e=6],
             mbconv[k=7, e=3], mbconv[k=7, e=6]]
let STACK = HEADS + [skip]

# The MBV2 search configuration (net_scale of imagenet_search_cfg_mbv2.yaml); block 0 is the
# fixed stem. fm_sizes 112, 56, 28, 14, 7 at input 224 are the strides 2, 4, 8, 16, 32.
let WIDTHS = [16, 24, 32, 40, 48, 56, 64, 72, 96, 112, 128, 160, 176, 192, 320, 352, 384]
let STRIDES = [2, 4, 8, 8, 8, 16, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32]
let STAGES = [0, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]
let LAYERS = [0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0]

# The blocks that block i connects to (the code's `out_id`): the next m blocks, up to the first
# that is more than one stage later or whose resolution is not the same or half.
block successors(i: int, strides: list[int], stages: list[int], m: int) {
    let outs = []
    let open = true
    for j in i + 1..min(i + m + 1, len(strides)) {
        let resolution_ok = strides[j] == strides[i] or strides[j] == 2 * strides[i]
        if open and stages[j] - stages[i] <= 1 and resolution_ok {
            outs += j
        } else {
            open = false
        }
    }
    return outs
}

space densenas(classes: int = 1000, in_channels: int = 3, m: int = 4, stem: int = 16,
               widths: list[int] = WIDTHS, strides: list[int] = STRIDES, stages: list[int] = STAGES,
               layers: list[int] = LAYERS, last: int = 1984) {
    let n = len(widths)
    assert len(strides) == n and len(stages) == n and len(layers) == n,
           "widths, strides, stages and layers need one entry per block"
    assert m >= 1, "each block needs at least one connection (m >= 1)"
    input x: image(in_channels)
    # block 0: the fixed first two layers (§3.1.3)
    let h = conv_bn_act(x, stem, k=3, stride=strides[0])
    let blocks = [mbconv(h, widths[0], k=3, e=1)]
    # the final 1x1 block sits one stage after the last, at its resolution
    let all_strides = strides + [strides[n - 1]]
    let all_stages = stages + [stages[n - 1] + 1]
    let outs = [successors(i, all_strides, all_stages, m) for i in 0..n]
    for j in 1..n {
        let src = [i for i in 0..j if j in outs[i]]
        assert len(src) > 0, "block {j} has no incoming connection"
        # head layers: one MBConv mixture per incoming connection, inside the pick (eq. 4)
        let b = sum([choose HEADS @"b{j}.head{src[h.index]}" (h, widths[j],
                                                              stride=strides[j] // h.stride)
                     for h in pick 1 of [blocks[i] for i in src] @"b{j}.in"])
        # stacking layers: an MBConv or skip each
        for l in 0..layers[j] {
            b = choose STACK @"b{j}.layer{l}" (b, widths[j])
        }
        blocks += b
    }
    let src = [i for i in 0..n if n in outs[i]]
    let features = sum([conv_bn_act(h, last, k=1)
                        for h in pick 1 of [blocks[i] for i in src] @"last.in"])
    output logits = linear(global_avg_pool(features), classes)
}
