"""A slow, literal port of AlexeyAB Darknet's detector loader (OpenCV build), for tests.

Written from ``load_data_detection``, ``fill_truth_detection``, ``correct_boxes``,
``randomize_boxes``, ``blend_truth`` and ``blend_truth_mosaic`` (``src/data.c``),
``image_data_augmentation``, ``mat_to_image`` and ``blend_images_cv``
(``src/image_opencv.cpp``): the same statements in the same order, C floats as
``np.float32``, ``(int)`` as truncation, OpenCV called where Darknet calls it, buffers as
Darknet's flat planar ``float`` arrays.  Every random value comes from a ``SampleDraws``
(Darknet's draws, named), so the fast loader can be checked against it given the same draws.

It covers one sample (``i`` of Darknet's loop): PLAIN, MIXUP (use_mixup=1) and MOSAIC
(use_mixup=3), with ``mosaic_bound`` either way.  Darknet refuses letter_box with mosaic;
``allow_letterbox_mosaic`` lets the same statements run, which is what darknet-py does.
"""

from __future__ import annotations

import cv2
import numpy as np

from darknet_py.train.draws import MIXUP, MOSAIC, noise_image

f = np.float32
TRUTH_SIZE = 5  # x, y, w, h, id (Darknet's track_id is not used by the detector)


def rand_precalc_random(lo, hi, random_part):
    lo, hi = f(lo), f(hi)
    if hi < lo:
        lo, hi = hi, lo
    return (f(random_part) * (hi - lo)) + lo


def trunc(v) -> int:
    return int(v)  # C's float -> int conversion


def cdiv(a: int, b: int) -> int:
    """C's integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


# ----------------------------------------------------------------------------- labels

def read_boxes(labels: np.ndarray) -> list[dict]:
    boxes = []
    for row in labels:
        x, y, w, h = (f(v) for v in row[1:5])
        boxes.append(dict(id=int(row[0]), x=x, y=y, w=w, h=h, left=x - w / f(2),
                          right=x + w / f(2), top=y - h / f(2), bottom=y + h / f(2)))
    return boxes


def randomize_boxes(b: list[dict], swaps) -> None:
    for i in range(len(b)):
        swap = b[i]
        index = swaps[i]
        b[i] = b[index]
        b[index] = swap


def constrain(lo, hi, a):
    return f(lo) if a < lo else f(hi) if a > hi else a


def correct_boxes(boxes: list[dict], dx, dy, sx, sy, flip: bool) -> None:
    for b in boxes:
        if b["x"] == 0 and b["y"] == 0:
            b.update(x=f(999999), y=f(999999), w=f(999999), h=f(999999))
            continue
        if (b["x"] + b["w"] / f(2)) < 0 or (b["y"] + b["h"] / f(2)) < 0 or \
                (b["x"] - b["w"] / f(2)) > 1 or (b["y"] - b["h"] / f(2)) > 1:
            b.update(x=f(999999), y=f(999999), w=f(999999), h=f(999999))
            continue
        b["left"] = b["left"] * sx - dx
        b["right"] = b["right"] * sx - dx
        b["top"] = b["top"] * sy - dy
        b["bottom"] = b["bottom"] * sy - dy
        if flip:
            swap = b["left"]
            b["left"] = f(1. - float(b["right"]))
            b["right"] = f(1. - float(swap))
        for k in ("left", "right", "top", "bottom"):
            b[k] = constrain(0, 1, b[k])
        b["x"] = (b["left"] + b["right"]) / f(2)
        b["y"] = (b["top"] + b["bottom"]) / f(2)
        b["w"] = constrain(0, 1, b["right"] - b["left"])
        b["h"] = constrain(0, 1, b["bottom"] - b["top"])


def fill_truth_detection(labels, swaps, num_boxes, truth, classes, flip, dx, dy, sx, sy,
                         net_w, net_h) -> int:
    boxes = read_boxes(labels)
    count = len(boxes)
    min_w_h = 0
    lowest_w, lowest_h = f(1) / f(net_w), f(1) / f(net_h)
    randomize_boxes(boxes, swaps)
    correct_boxes(boxes, dx, dy, sx, sy, flip)
    if count > num_boxes:
        count = num_boxes
    sub = 0
    for i in range(count):
        x, y, w, h, id_ = (boxes[i][k] for k in ("x", "y", "w", "h", "id"))
        if id_ >= classes:
            sub += 1
            continue
        if w < lowest_w or h < lowest_h:
            sub += 1
            continue
        if x == 999999 or y == 999999:
            sub += 1
            continue
        if x <= 0 or x > 1 or y <= 0 or y > 1:
            sub += 1
            continue
        if w > 1:
            w = f(1)
        if h > 1:
            h = f(1)
        if x == 0:
            x += lowest_w
        if y == 0:
            y += lowest_h
        t = (i - sub) * TRUTH_SIZE
        truth[t: t + 5] = [x, y, w, h, id_]
        if min_w_h == 0:
            min_w_h = trunc(w * f(net_w))
        if min_w_h > w * f(net_w):
            min_w_h = trunc(w * f(net_w))
        if min_w_h > h * f(net_h):
            min_w_h = trunc(h * f(net_h))
    return min_w_h


def blend_truth(new_truth, boxes, old_truth) -> None:
    count_new_truth = 0
    for t in range(boxes):
        if not new_truth[t * TRUTH_SIZE]:
            break
        count_new_truth += 1
    for t in range(count_new_truth, boxes):
        old = (t - count_new_truth) * TRUTH_SIZE
        if not old_truth[old]:
            break
        new_truth[t * TRUTH_SIZE: t * TRUTH_SIZE + 5] = old_truth[old: old + 5]


def blend_truth_mosaic(new_truth, boxes, old_truth, w, h, cut_x, cut_y, i_mixup, left_shift,
                       right_shift, top_shift, bot_shift, net_w, net_h, mosaic_bound) -> None:
    lowest_w, lowest_h = f(1) / f(net_w), f(1) / f(net_h)
    cut_x, cut_y = f(cut_x), f(cut_y)  # float parameters in Darknet
    count_new_truth = 0
    for t in range(boxes):
        if not new_truth[t * TRUTH_SIZE]:
            break
        count_new_truth += 1
    new_t = count_new_truth
    for t in range(count_new_truth, boxes):
        new_truth[new_t * TRUTH_SIZE] = 0
        old = (t - count_new_truth) * TRUTH_SIZE
        if not old_truth[old]:
            break
        xb, yb, wb, hb = (f(v) for v in old_truth[old: old + 4])
        if i_mixup == 0:
            xb = xb - f(w - cut_x - right_shift) / w
            yb = yb - f(h - cut_y - bot_shift) / h
        if i_mixup == 1:
            xb = xb + f(cut_x - left_shift) / w
            yb = yb - f(h - cut_y - bot_shift) / h
        if i_mixup == 2:
            xb = xb - f(w - cut_x - right_shift) / w
            yb = yb + f(cut_y - top_shift) / h
        if i_mixup == 3:
            xb = xb + f(cut_x - left_shift) / w
            yb = yb + f(cut_y - top_shift) / h
        left, right = trunc((xb - wb / f(2)) * w), trunc((xb + wb / f(2)) * w)
        top, bot = trunc((yb - hb / f(2)) * h), trunc((yb + hb / f(2)) * h)
        if mosaic_bound:
            bounds = {0: (0, cut_x, 0, cut_y), 1: (cut_x, w, 0, cut_y),
                      2: (0, cut_x, cut_y, h), 3: (cut_x, w, cut_y, h)}[i_mixup]
            left_bound, right_bound, top_bound, bot_bound = (f(v) for v in bounds)
            if left < left_bound:
                left = trunc(left_bound)
            if right > right_bound:
                right = trunc(right_bound)
            if top < top_bound:
                top = trunc(top_bound)
            if bot > bot_bound:
                bot = trunc(bot_bound)
            xb = (f(right + left) / f(2)) / w
            wb = f(right - left) / w
            yb = (f(bot + top) / f(2)) / h
            hb = f(bot - top) / h
        else:
            if left < 0:
                diff = f(left) / w
                xb, wb = xb - diff / f(2), wb + diff
            if right > w:
                diff = f(right - w) / w
                xb, wb = xb - diff / f(2), wb - diff
            if top < 0:
                diff = f(top) / h
                yb, hb = yb - diff / f(2), hb + diff
            if bot > h:
                diff = f(bot - h) / h
                yb, hb = yb - diff / f(2), hb - diff
            left, right = trunc((xb - wb / f(2)) * w), trunc((xb + wb / f(2)) * w)
            top, bot = trunc((yb - hb / f(2)) * h), trunc((yb + hb / f(2)) * h)
        if (left >= 0 and right <= w and top >= 0 and bot <= h and 0 < wb < 1 and 0 < hb < 1
                and 0 < xb < 1 and 0 < yb < 1 and wb > lowest_w and hb > lowest_h):
            new_truth[new_t * TRUTH_SIZE: new_t * TRUTH_SIZE + 5] = [
                xb, yb, wb, hb, old_truth[old + 4]]
            new_t += 1


# ----------------------------------------------------------------------------- pixels

def mat_to_image(mat: np.ndarray) -> np.ndarray:
    h, w, c = mat.shape
    im = np.zeros(c * h * w, np.float32)
    for y in range(h):
        for k in range(c):
            im[k * w * h + y * w: k * w * h + y * w + w] = mat[y, :, k] / f(255)
    return im


def image_data_augmentation(img, w, h, pleft, ptop, swidth, sheight, flip, dhue, dsat, dexp,
                            gaussian_noise, noise_seed, blur, num_boxes, truth) -> np.ndarray:
    ih, iw = img.shape[:2]
    x0, y0 = max(pleft, 0), max(ptop, 0)
    x1, y1 = min(pleft + swidth, iw), min(ptop + sheight, ih)
    if pleft == 0 and ptop == 0 and (swidth, sheight) == (iw, ih):
        sized = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        cropped = np.empty((sheight, swidth, 3), np.uint8)
        mean = cv2.mean(img)
        for k in range(3):  # cropped.setTo(cv::mean(img)): saturate_cast, cvRound
            cropped[:, :, k] = min(255, max(0, round(mean[k])))
        if x1 > x0 and y1 > y0:  # img(new_src_rect).copyTo(cropped(dst_rect))
            dx, dy = max(0, -pleft), max(0, -ptop)
            cropped[dy: dy + y1 - y0, dx: dx + x1 - x0] = img[y0:y1, x0:x1]
        sized = cv2.resize(cropped, (w, h), interpolation=cv2.INTER_LINEAR)
    if flip:
        sized = cv2.flip(sized, 1).copy()
    if dsat != 1 or dexp != 1 or dhue != 0:
        hsv = list(cv2.split(cv2.cvtColor(sized, cv2.COLOR_RGB2HSV)))
        hsv[1] = cv2.convertScaleAbs(hsv[1], alpha=float(f(dsat)))  # Mat *= double
        hsv[2] = cv2.convertScaleAbs(hsv[2], alpha=float(f(dexp)))
        hsv[0] = cv2.add(hsv[0], float(f(179) * f(dhue)))  # Mat += double: a Scalar
        sized = cv2.cvtColor(cv2.merge(hsv), cv2.COLOR_HSV2RGB)
    if blur:
        if blur == 1:
            dst = cv2.GaussianBlur(sized, (17, 17), 0)
        else:
            ksize = (blur // 2) * 2 + 1
            dst = cv2.GaussianBlur(sized, (ksize, ksize), 0)
        if blur == 1:
            rows, cols = sized.shape[:2]
            for t in range(num_boxes):
                bx, by, bw, bh = (f(v) for v in truth[t * TRUTH_SIZE: t * TRUTH_SIZE + 4])
                if not bx:
                    break
                left = trunc((float(bx) - float(bw) / 2.) * cols)
                width = trunc(bw * f(cols))
                top = trunc((float(by) - float(bh) / 2.) * rows)
                height = trunc(bh * f(rows))
                rx0, ry0 = max(left, 0), max(top, 0)  # roi & img_rect
                rx1, ry1 = min(left + width, cols), min(top + height, rows)
                if rx1 > rx0 and ry1 > ry0:
                    dst[ry0:ry1, rx0:rx1] = sized[ry0:ry1, rx0:rx1]
        sized = dst
    if gaussian_noise:
        noise = noise_image(noise_seed, sized.shape, gaussian_noise)  # cv::randn's draws
        sized = cv2.add(sized, noise)
    return mat_to_image(sized)


# ----------------------------------------------------------------------------- the loop

def load_data_detection(images, labels, draws, w, h, boxes, classes, jitter, resize,
                        letter_box, mosaic_bound=0, allow_letterbox_mosaic=False):
    """One sample: (3*h*w,) planar float32 RGB and the (boxes*5,) truth, for RGB uint8
    ``images`` and (N, 5) ``labels`` (class cx cy w h) indexed by the draws."""
    use_mixup = draws.mode
    if use_mixup == MOSAIC and letter_box and not allow_letterbox_mosaic:
        raise ValueError("Combination: letter_box=1 & mosaic=1 - isn't supported")
    c = 3
    X = None
    y = np.zeros(TRUTH_SIZE * boxes, np.float32)
    jitter, resize = f(jitter), f(resize)
    for i_mixup in range(use_mixup + 1):
        d = draws.pieces[i_mixup]
        truth = np.zeros(TRUTH_SIZE * boxes, np.float32)
        src = images[d.index]
        oh, ow = src.shape[:2]
        dw, dh = trunc(ow * jitter), trunc(oh * jitter)
        resize_down, resize_up = resize, resize
        if resize_down > 1.0:
            resize_down = 1 / resize_down
        min_rdw = trunc(ow * (1 - (1 / resize_down)) / 2)
        min_rdh = trunc(oh * (1 - (1 / resize_down)) / 2)
        if resize_up < 1.0:
            resize_up = 1 / resize_up
        max_rdw = trunc(ow * (1 - (1 / resize_up)) / 2)
        max_rdh = trunc(oh * (1 - (1 / resize_up)) / 2)
        flip = d.flip
        pleft = trunc(rand_precalc_random(-dw, dw, d.r1))
        pright = trunc(rand_precalc_random(-dw, dw, d.r2))
        ptop = trunc(rand_precalc_random(-dh, dh, d.r3))
        pbot = trunc(rand_precalc_random(-dh, dh, d.r4))
        if resize < 1:
            pleft = trunc(pleft + rand_precalc_random(min_rdw, 0, d.resize_r1))
            pright = trunc(pright + rand_precalc_random(min_rdw, 0, d.resize_r2))
            ptop = trunc(ptop + rand_precalc_random(min_rdh, 0, d.resize_r1))
            pbot = trunc(pbot + rand_precalc_random(min_rdh, 0, d.resize_r2))
        else:
            pleft = trunc(pleft + rand_precalc_random(min_rdw, max_rdw, d.resize_r1))
            pright = trunc(pright + rand_precalc_random(min_rdw, max_rdw, d.resize_r2))
            ptop = trunc(ptop + rand_precalc_random(min_rdh, max_rdh, d.resize_r1))
            pbot = trunc(pbot + rand_precalc_random(min_rdh, max_rdh, d.resize_r2))
        if letter_box:
            img_ar = f(ow) / f(oh)
            net_ar = f(w) / f(h)
            result_ar = img_ar / net_ar
            if result_ar > 1:
                oh_tmp = f(ow) / net_ar
                delta_h = (oh_tmp - oh) / 2
                ptop = trunc(ptop - delta_h)
                pbot = trunc(pbot - delta_h)
            else:
                ow_tmp = f(oh) * net_ar
                delta_w = (ow_tmp - ow) / 2
                pleft = trunc(pleft - delta_w)
                pright = trunc(pright - delta_w)
        if use_mixup == MOSAIC and d.corner:
            if flip:
                if i_mixup == 0:
                    pleft, pright, pbot, ptop = pleft + pright, 0, pbot + ptop, 0
                if i_mixup == 1:
                    pright, pleft, pbot, ptop = pright + pleft, 0, pbot + ptop, 0
                if i_mixup == 2:
                    pleft, pright, ptop, pbot = pleft + pright, 0, ptop + pbot, 0
                if i_mixup == 3:
                    pright, pleft, ptop, pbot = pright + pleft, 0, ptop + pbot, 0
            else:
                if i_mixup == 0:
                    pright, pleft, pbot, ptop = pright + pleft, 0, pbot + ptop, 0
                if i_mixup == 1:
                    pleft, pright, pbot, ptop = pleft + pright, 0, pbot + ptop, 0
                if i_mixup == 2:
                    pright, pleft, ptop, pbot = pright + pleft, 0, ptop + pbot, 0
                if i_mixup == 3:
                    pleft, pright, ptop, pbot = pleft + pright, 0, ptop + pbot, 0
        swidth = ow - pleft - pright
        sheight = oh - ptop - pbot
        if swidth <= 0 or sheight <= 0 or (ow - pleft) <= 0 or (oh - ptop) <= 0:
            swidth, sheight, pleft, ptop = ow, oh, 0, 0
        sx = f(swidth) / ow
        sy = f(sheight) / oh
        dx = (f(pleft) / ow) / sx
        dy = (f(ptop) / oh) / sy
        min_w_h = fill_truth_detection(labels[d.index], d.box_swaps, boxes, truth, classes,
                                       flip, dx, dy, f(1. / float(sx)), f(1. / float(sy)),
                                       w, h)
        blur = d.blur
        if (min_w_h // 8) < blur and blur > 1:
            blur = min_w_h // 8
        ai = image_data_augmentation(src, w, h, pleft, ptop, swidth, sheight, flip, d.dhue,
                                     d.dsat, d.dexp, d.gaussian_noise, d.noise_seed, blur,
                                     boxes, truth)
        if use_mixup == 0:
            X = ai
            y[:] = truth
        elif use_mixup == MIXUP:
            if i_mixup == 0:
                X = ai
                y[:] = truth
            else:  # blend_images_cv(ai, 0.5, old_img, 0.5)
                X = cv2.addWeighted(ai, 0.5, X, 0.5, 0.0).ravel()
                blend_truth(y, boxes, truth)
        elif use_mixup == MOSAIC:
            if i_mixup == 0:
                X = np.zeros(h * w * c, np.float32)
            if flip:
                pleft, pright = pright, pleft
            cut_x, cut_y = draws.cut_x, draws.cut_y
            left_shift = min(cut_x, max(0, cdiv(-pleft * w, ow)))
            top_shift = min(cut_y, max(0, cdiv(-ptop * h, oh)))
            right_shift = min(w - cut_x, max(0, cdiv(-pright * w, ow)))
            bot_shift = min(h - cut_y, max(0, cdiv(-pbot * h, oh)))
            for k in range(c):
                for yy in range(h):
                    j = yy * w + k * w * h
                    if i_mixup == 0 and yy < cut_y:
                        j_src = (w - cut_x - right_shift) + (yy + h - cut_y - bot_shift) * w \
                            + k * w * h
                        X[j: j + cut_x] = ai[j_src: j_src + cut_x]
                    if i_mixup == 1 and yy < cut_y:
                        j_src = left_shift + (yy + h - cut_y - bot_shift) * w + k * w * h
                        X[j + cut_x: j + w] = ai[j_src: j_src + w - cut_x]
                    if i_mixup == 2 and yy >= cut_y:
                        j_src = (w - cut_x - right_shift) + (top_shift + yy - cut_y) * w \
                            + k * w * h
                        X[j: j + cut_x] = ai[j_src: j_src + cut_x]
                    if i_mixup == 3 and yy >= cut_y:
                        j_src = left_shift + (top_shift + yy - cut_y) * w + k * w * h
                        X[j + cut_x: j + w] = ai[j_src: j_src + w - cut_x]
            blend_truth_mosaic(y, boxes, truth, w, h, cut_x, cut_y, i_mixup, left_shift,
                               right_shift, top_shift, bot_shift, w, h, mosaic_bound)
    return X, y


def truth_rows(y: np.ndarray) -> np.ndarray:
    """Darknet's zero-terminated truth -> (N, 5) ``class cx cy w h`` rows."""
    rows = []
    for t in range(len(y) // TRUTH_SIZE):
        x, yy, w, h, id_ = y[t * TRUTH_SIZE: t * TRUTH_SIZE + 5]
        if not x:
            break
        rows.append((id_, x, yy, w, h))
    return np.array(rows, np.float32).reshape(-1, 5)
