"""Named points of the Scaled-YOLOv4 curve, called by the shipped cfgs' names.

Each preset is a design (``darknet_py.cfg.family``) whose generated cfg is structurally
the shipped file (``cfg diff`` finds nothing).  Where a shipped model follows the scaling
rule from another one, the preset is written as that rule:

- yolov4x-mish and yolov4-csp-x-mish are yolov4-csp at width 1.25, depth 1.25;
- yolov4-csp-swish is yolov4-csp with swish;
- yolov4-csp-s-mish is yolov4-csp at width 0.5 with one block per stage and per neck pair;
- yolov4-p6 is yolov4-p5 with one more level;
- yolov4-tiny-3l is yolov4-tiny with one more level.

The -swish, -x-mish and -s-mish files write their heads after the PAN, as the P family
does (``heads_last``); yolov4-csp and yolov4x-mish write each head between PAN stages.
cspx-p7-mish is written out: its stem is 80 filters, its first stage is not split, its P3
neck is 128 filters where the rule gives 160, and its heads carry spatial attention.  The
shipped file says ``num=16`` for 20 anchors; the preset writes ``num=20``.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import CfgError
from .family import Anchor, CspDesign, Design, Head, TinyDesign, scaled


def _anchors(text: str) -> tuple[Anchor, ...]:
    v = [int(x) for x in text.split(",")]
    return tuple(zip(v[0::2], v[1::2]))


CSP_ANCHORS = _anchors("12,16,19,36,40,28,36,75,76,55,72,146,142,110,192,243,459,401")
P5_ANCHORS = _anchors("13,17,31,25,24,51,61,45,48,102,119,96,97,189,217,184,171,384,"
                      "324,451,616,618,800,800")
P6_ANCHORS = _anchors("13,17,31,25,24,51,61,45,61,45,48,102,119,96,97,189,97,189,217,184,"
                      "171,384,324,451,324,451,545,357,616,618,1024,1024")
P7_ANCHORS = _anchors("13,17,22,25,27,66,55,41,57,88,112,69,69,177,136,138,136,138,287,114,"
                      "134,275,268,248,268,248,232,504,445,416,640,640,812,393,477,808,"
                      "1070,908,1408,1408")
TINY_ANCHORS = _anchors("10,14,23,27,37,58,81,82,135,169,344,319")

TRAIN = {"momentum": "0.949", "decay": "0.0005", "angle": "0", "saturation": "1.5",
         "exposure": "1.5", "hue": ".1", "learning_rate": "0.001", "burn_in": "1000",
         "max_batches": "500500", "policy": "steps", "steps": "400000,450000",
         "scales": ".1,.1", "mosaic": "1", "letter_box": "1", "ema_alpha": "0.9998"}
SCALED_YOLO = {"jitter": ".1", "scale_x_y": "2.0", "objectness_smooth": "1",
               "ignore_thresh": ".7", "truth_thresh": "1", "resize": "1.5",
               "iou_normalizer": "0.05", "cls_normalizer": "0.5", "obj_normalizer": "0.4",
               "iou_loss": "ciou", "nms_kind": "diounms", "beta_nms": "0.6", "new_coords": "1",
               "max_delta": "2"}
_CSP_COMMON = {k: v for k, v in SCALED_YOLO.items()
               if k not in ("objectness_smooth", "obj_normalizer", "max_delta")}
CSP_HEAD = Head({**_CSP_COMMON, "iou_thresh": "0.2"},
                ({"objectness_smooth": "0", "obj_normalizer": "4.0", "max_delta": "5"},
                 {"objectness_smooth": "1", "obj_normalizer": "1.0", "max_delta": "5"},
                 {"objectness_smooth": "1", "obj_normalizer": "0.4", "max_delta": "2"}))
P_HEAD = Head({**SCALED_YOLO, "iou_thresh": "0.2", "obj_normalizer": "1.0"})
TINY_HEAD = Head({"jitter": ".3", "scale_x_y": "1.05", "cls_normalizer": "1.0",
                  "iou_normalizer": "0.07", "iou_loss": "ciou", "ignore_thresh": ".7",
                  "truth_thresh": "1", "random": "0", "resize": "1.5",
                  "nms_kind": "greedynms", "beta_nms": "0.6"})
TINY_TRAIN = {"subdivisions": "1", "momentum": "0.9", "decay": "0.0005", "angle": "0",
              "saturation": "1.5", "exposure": "1.5", "hue": ".1", "learning_rate": "0.00261",
              "burn_in": "1000", "max_batches": "2000200", "policy": "steps",
              "steps": "1600000,1800000", "scales": ".1,.1"}

CSP = CspDesign("yolov4-csp", stem=32, stages=(64, 128, 256, 512, 1024),
                depths=(1, 2, 8, 8, 4), neck=(128, 256, 512), heads=(256, 512, 1024),
                neck_depth=2, anchors=CSP_ANCHORS, width=512, height=512, net=TRAIN,
                head=CSP_HEAD)
P5 = CspDesign("yolov4-p5", stem=32, stages=(64, 128, 256, 512, 1024), depths=(1, 3, 15, 15, 7),
               neck=(128, 256, 512), heads=(256, 512, 1024), neck_depth=3, spp_pairs=2,
               csp_first_stage=True, heads_last=True, anchors=P5_ANCHORS, width=896,
               height=896, net=TRAIN, head=P_HEAD)
P7 = CspDesign("cspx-p7-mish", stem=80, stages=(80, 160, 320, 640, 1280, 1280, 1280),
               depths=(1, 3, 15, 15, 7, 7, 7), neck=(128, 320, 640, 640, 640),
               heads=(320, 640, 1280, 1280, 1280), neck_depth=3, spp_pairs=2,
               heads_last=True, sam_heads=True, anchors=P7_ANCHORS, width=1536, height=1536,
               net={k: v for k, v in TRAIN.items() if k != "ema_alpha"},
               head=Head({**SCALED_YOLO, "iou_thresh": "0.2", "max_delta": "40"},
                         tuple({"obj_normalizer": v} for v in ("4.0", "1.0", "0.5", "0.4",
                                                               "0.1"))))
TINY = TinyDesign("yolov4-tiny", stem=(32, 64), blocks=(64, 128, 256), top=512, neck=256,
                  levels=2, anchors=TINY_ANCHORS, width=416, height=416, net=TINY_TRAIN,
                  head=replace(TINY_HEAD, masks=((1, 2, 3), (3, 4, 5))))


def _named(design: Design, name: str, **changes) -> Design:
    return replace(design, name=name, **changes)


_LR = "0.00261"
_X = scaled(CSP, width=1.25, depth=1.25)
PRESETS: dict[str, Design] = {
    "yolov4-csp": CSP,
    "yolov4-csp-swish": _named(CSP, "yolov4-csp-swish", activation="swish", heads_last=True,
                               width=640, height=640, head=Head(SCALED_YOLO)),
    "yolov4x-mish": _named(_X, "yolov4x-mish", width=640, height=640,
                           net={k: v for k, v in TRAIN.items() if k != "ema_alpha"}),
    "yolov4-csp-x-mish": _named(_X, "yolov4-csp-x-mish", width=640, height=640,
                                heads_last=True, net={**TRAIN, "learning_rate": _LR},
                                head=Head(SCALED_YOLO)),
    "yolov4-csp-s-mish": _named(scaled(CSP, width=0.5, depth=(1, 1, 1, 1, 1)),
                                "yolov4-csp-s-mish", neck_depth=1, heads_last=True,
                                width=640, height=640, net={**TRAIN, "learning_rate": _LR},
                                head=Head(SCALED_YOLO)),
    "yolov4-p5": P5,
    "yolov4-p6": _named(scaled(P5, levels=4, anchors=P6_ANCHORS), "yolov4-p6",
                        width=1280, height=1280),
    "cspx-p7-mish": P7,
    "yolov4-tiny": TINY,
    "yolov4-tiny-3l": _named(scaled(TINY, levels=3, anchors=CSP_ANCHORS), "yolov4-tiny-3l",
                             width=608, height=608,
                             net={**TINY_TRAIN, "max_batches": "500200",
                                  "steps": "400000,450000"}),
}


def preset(name: str) -> Design:
    """The design called ``name`` (a shipped cfg's name, with or without ``.cfg``)."""
    key = name[:-4] if name.endswith(".cfg") else name
    if key not in PRESETS:
        raise CfgError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[key]
