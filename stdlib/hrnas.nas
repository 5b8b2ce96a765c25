# hrnas.nas: the multi-branch search space of HR-NAS (Ding et al., "HR-NAS: Searching Efficient
# High-Resolution Neural Architectures with Lightweight Transformers", CVPR 2021, §3.2, §3.3,
# §4.1; widths and depths from the authors' configs/cls_imagenet.yml and seg_cityscapes.yml,
# layout from models/hrnet.py, where the paper is silent).
#
# Two 3x3 stride-2 convolutions (to 1/4), then five parallel modules with 1, 2, 3, 4, 4
# branches (1/4 ... 1/32). Before each parallel module a fusion module (the authors' FuseModule;
# the first one maps the stem to the first module): output branch i sums the searching blocks of
# its neighbouring input branches j in {i-1, i, i+1} (a reduction block with stride 2 from
# j = i - 1, a normal block from j = i, a normal block + nearest upsampling from j = i + 1),
# then ReLU; a new lower-resolution branch comes from the previous lowest one by a reduction
# block, down to 1/32. The fusion blocks are searching blocks with search units of their own,
# so they are written here rather than produced by `align` (whose "hrnas" policy is HRNet's
# fixed conv/upsample fusion, with nothing to search).
#
# Searching block (eq. 5): mixconv (3x3, 5x5, 7x7 depthwise, expansion 3r, r = 4) + the
# lightweight transformer (s = 8, d = 64, h = 1, n tokens; `s`, `d` are parameters). Its search
# units are value choices: the hidden channels of each branch, {0..rc}, and the tokens, {0..n}:
# 3rc + n per block (c = the block's input channels). The importance pass (method="hrnas")
# relaxes them with importance factors.
#
# Heads (task): "classification" is the authors' HeadModule (a searching block per branch to
# `head` widths, reduction blocks chaining 1/4 -> 1/32, 1x1 conv to `last`, global pooling,
# dropout 0.2, linear); "segmentation" resizes every branch to 1/4, concatenates, a searching
# block to `last` and a 1x1 classifier (logits at 1/4 of the input, as the authors' model).
# At the default widths the segmentation head's block reads 270 channels, so its branch widths
# choose among 0..1080 (within the default elaboration limit of 10,000 options per choice).

import nn
import mobile_ops
import hrnas_ops

# One searching block from x to C channels; its units are labelled "{tag}.c3" ... "{tag}.n".
block searching_block(x: image, C: int, stride: int, r: int, tokens: int, s: int, d: int,
                      tag: str) {
    let rc = r * x.channels
    let conv = mixconv(x, C, c3=choose {0..rc + 1} @"{tag}.c3", c5=choose {0..rc + 1} @"{tag}.c5",
                       c7=choose {0..rc + 1} @"{tag}.c7", stride=stride)
    return conv + transformer(x, C, n=choose {0..tokens + 1} @"{tag}.n", stride=stride, s=s, d=d)
}

space hrnas(task: str = "classification", classes: int = 1000, in_channels: int = 3,
            stem: list[int] = [24, 24],
            widths: list = [[24], [18, 36], [18, 36, 72], [18, 36, 72, 144], [18, 36, 72, 144]],
            blocks: list = [[1], [2, 2], [2, 2, 3], [2, 2, 3, 4], [2, 2, 3, 4]],
            head: list[int] = [36, 72, 144, 320], last: int = 0, r: int = 4, tokens: int = 64,
            s: int = 8, d: int = 64) {
    assert task == "classification" or task == "segmentation",
           "task must be classification or segmentation"
    assert len(widths) == len(blocks), "widths and blocks need one entry per parallel module"
    input x: image(in_channels)
    let h = conv_bn_act(x, stem[0], k=3, stride=2, act="relu")
    let xs = [conv_bn_act(h, stem[1], k=3, stride=2, act="relu")]
    for m in 0..len(widths) {
        let cs = widths[m]
        # fusion module m: len(xs) input branches -> len(cs) output branches
        let fused = []
        for i in 0..min(len(xs), len(cs)) {
            let parts = []
            for j in max(0, i - 1)..min(len(xs), i + 2) {
                let tag = "fuse{m}.{i}.{j}"
                if j < i {
                    parts += searching_block(xs[j], cs[i], 2, r, tokens, s, d, tag)
                } else if j == i {
                    parts += searching_block(xs[j], cs[i], 1, r, tokens, s, d, tag)
                } else {
                    let up = searching_block(xs[j], cs[i], 1, r, tokens, s, d, tag)
                    parts += upsample_nearest(up, factor=2)
                }
            }
            fused += relu(sum(parts))
        }
        for b in len(xs)..len(cs) {
            fused += searching_block(fused[b - 1], cs[b], 2, r, tokens, s, d, "fuse{m}.new{b}")
        }
        # parallel module m: blocks[m][b] searching blocks on branch b
        xs = []
        for b in 0..len(cs) {
            let y = fused[b]
            for k in 0..blocks[m][b] {
                y = searching_block(y, cs[b], 1, r, tokens, s, d, "par{m}.{b}.{k}")
            }
            xs += y
        }
    }
    if task == "classification" {
        let y = searching_block(xs[0], head[0], 1, r, tokens, s, d, "head.incre0")
        for i in 1..len(xs) {
            y = searching_block(xs[i], head[i], 1, r, tokens, s, d, "head.incre{i}")
                + searching_block(y, head[i], 2, r, tokens, s, d, "head.down{i}")
        }
        let feat = conv_bn_act(y, last > 0 ? last : 1600, k=1, act="relu")
        output logits = linear(dropout(global_avg_pool(feat), p=0.2), classes)
    } else {
        let ups = [xs[0]]
        let f = 1
        for i in 1..len(xs) {
            f = 2 * f
            ups += upsample(xs[i], factor=f)
        }
        let y = searching_block(concat(ups), last > 0 ? last : 90, 1, r, tokens, s, d,
                                "head.transform")
        output logits = conv2d(y, classes, k=1, bias=true)
    }
}
