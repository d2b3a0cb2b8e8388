"""Training: Darknet's schedule and update, data, the loop, checkpoints, signals, NaN, DDP."""

from __future__ import annotations

import itertools
import math
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from darknet_py import Darknet
from darknet_py.cfg import parse_cfg
from darknet_py.errors import DarknetError
from darknet_py.nn.weights import read_weights
from darknet_py.train import (TrainConfig, Trainer, TrainingDiverged, train,
                              train_distributed)
from darknet_py.train.augment import Crop, fill_truth
from darknet_py.train.dataset import TrainSampler, network_size
from darknet_py.train.draws import PieceDraws
from darknet_py.train.optim import (learning_rate, make_optimizer, schedule_warnings,
                                    set_learning_rate)

from .conftest import COCO128, ROOT, requires_shared

TINY = (ROOT / "cfg" / "yolov4-tiny.cfg").read_text()


def _net(**keys):
    text = "[net]\nwidth=32\nheight=32\nchannels=3\n" + "".join(
        f"{k}={v}\n" for k, v in keys.items())
    return parse_cfg(text + "[convolutional]\nfilters=18\nsize=1\nstride=32\nactivation=linear"
                     "\n[yolo]\nmask=0,1,2\nanchors=1,1,2,2,3,3\nclasses=1\nnum=3\n").net


def test_learning_rate_policies_hand_worked():
    net = _net(learning_rate=0.01, burn_in=100, policy="steps", steps="200,300",
               scales=".1,.5", max_batches=400)
    assert learning_rate(net, 1) == pytest.approx(0.01 * (1 / 100) ** 4)
    assert learning_rate(net, 50) == pytest.approx(0.01 * 0.5 ** 4)
    assert [learning_rate(net, k) for k in (100, 199, 200, 299, 300)] == pytest.approx(
        [0.01, 0.01, 0.001, 0.001, 0.0005])
    poly = _net(learning_rate=0.01, policy="poly", power=2, max_batches=100)
    assert learning_rate(poly, 25) == pytest.approx(0.01 * 0.75 ** 2)
    sgdr = _net(learning_rate=0.01, learning_rate_min=0.001, policy="sgdr", sgdr_cycle=10,
                max_batches=100)
    assert learning_rate(sgdr, 5) == pytest.approx(0.001 + 0.5 * 0.009 * (1 + math.cos(
        math.pi / 2)))
    assert learning_rate(sgdr, 15) == pytest.approx(0.001 + 0.5 * 0.009 * (1 + math.cos(
        5 * math.pi / 20)))  # second cycle, twice as long
    assert learning_rate(_net(learning_rate=0.1, policy="exp", gamma=0.9), 3) == \
        pytest.approx(0.1 * 0.9 ** 3)


def test_the_runs_length_drives_poly_and_sgdr():
    """--max-batches (the run's length) is what poly and sgdr schedule over; a cfg
    without max_batches neither divides by zero nor loops forever."""
    poly = _net(learning_rate=0.01, policy="poly", power=2)  # no max_batches in the cfg
    assert learning_rate(poly, 25, 100) == pytest.approx(0.01 * 0.75 ** 2)
    sgdr = _net(learning_rate=0.01, learning_rate_min=0.001, policy="sgdr")
    assert learning_rate(sgdr, 5, 10) == pytest.approx(0.001 + 0.5 * 0.009 * (1 + math.cos(
        math.pi / 2)))
    with pytest.raises(ValueError, match="needs max_batches"):
        learning_rate(poly, 25)


def test_schedule_warnings():
    assert schedule_warnings(_net(burn_in=1000, learning_rate=0.001), 1000)[0].startswith(
        "burn_in=1000 is not below max_batches=1000")
    assert "short" in schedule_warnings(_net(burn_in=40, learning_rate=0.00261), 300)[0]
    assert schedule_warnings(_net(burn_in=1000, learning_rate=0.00261), 6000) == []


def test_sgd_step_is_darknets_update():
    """U -= decay*B*W (weights only); W += rate/B * U; U *= momentum, with U the summed
    negative gradient (two steps, so momentum counts)."""
    text = TINY.replace("batch=64", "batch=8").replace("subdivisions=1", "subdivisions=2")
    model = Darknet.from_text(text, width=64, height=64)
    net = model.net
    opt = make_optimizer(model)
    conv = model.layers[0].conv.weight
    bn_w = model.layers[0].bn.weight
    w0, b0 = conv.detach().clone(), bn_w.detach().clone()
    u_w, u_b = torch.zeros_like(w0), torch.zeros_like(b0)
    torch.manual_seed(0)
    for step, rate in enumerate((0.01, 0.02), 1):
        g_w, g_b = torch.randn_like(w0), torch.randn_like(b0)
        conv.grad, bn_w.grad = g_w.clone(), g_b.clone()
        set_learning_rate(opt, rate, net.batch)
        opt.step()
        u_w = u_w - g_w - net.decay * net.batch * w0
        w0 = w0 + rate / net.batch * u_w
        u_w = u_w * net.momentum
        u_b = u_b - g_b
        b0 = b0 + rate / net.batch * u_b
        u_b = u_b * net.momentum
        torch.testing.assert_close(conv.detach(), w0, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(bn_w.detach(), b0, rtol=1e-5, atol=1e-7)


def test_stopbackward_freezes_leading_layers():
    text = TINY.replace("[route]\nlayers=-1\ngroups=2\ngroup_id=1",
                        "[route]\nlayers=-1\ngroups=2\ngroup_id=1\nstopbackward=1", 1)
    model = Darknet.from_text(text, width=64, height=64)
    make_optimizer(model)
    assert not model.layers[0].conv.weight.requires_grad
    assert model.layers[4].conv.weight.requires_grad


def _draws(flip=False, swaps=(0,)):
    return PieceDraws(0, .5, .5, .5, .5, .5, .5, flip, 0., 1., 1., 0, 0, False, swaps, 0)


def test_fill_truth_hand_worked():
    labels = np.array([[3, 0.5, 0.5, 0.2, 0.4]], np.float32)  # 100 x 50 image: 40..60, 15..35
    crop = Crop(left=30, right=20, top=10, bottom=10, width=50, height=30)  # x 30..80, y 10..40
    out, min_w_h = fill_truth(labels, _draws(), crop, 100, 50, 416, 416, 90)
    np.testing.assert_allclose(out, [[3, 0.4, 0.5, 0.4, 20 / 30]], rtol=1e-6)
    assert min_w_h == int(np.float32(0.4) * 416)
    flipped, _ = fill_truth(labels, _draws(flip=True), crop, 100, 50, 416, 416, 90)
    np.testing.assert_allclose(flipped[0, 1], 0.6, rtol=1e-6)
    gone, _ = fill_truth(labels, _draws(), Crop(61, 9, 10, 10, 30, 30), 100, 50, 416, 416, 90)
    assert gone.shape == (0, 5)  # left of the crop
    two = np.array([[1, .2, .2, .1, .1], [2, .7, .7, .1, .1]], np.float32)
    order, _ = fill_truth(two, _draws(swaps=(1, 1)), Crop(0, 0, 0, 0, 100, 50), 100, 50, 416,
                          416, 90)
    assert order[:, 0].tolist() == [2, 1]  # box 0 swapped with 1, then 1 with itself
    corner, _ = fill_truth(np.array([[0, 0, 0, .1, .1]], np.float32), _draws(),
                           Crop(0, 0, 0, 0, 100, 50), 100, 50, 416, 416, 90)
    assert corner.shape == (0, 5)  # Darknet drops a box at x = y = 0


def test_sampler_is_deterministic_and_splits_the_mini_batch():
    one = list(TrainSampler(50, 4, 2, lambda it: (64, 64), seed=3, start=5, stop=7))
    again = list(TrainSampler(50, 4, 2, lambda it: (64, 64), seed=3, start=6, stop=7))
    assert len(one) == 4 and one[2:] == again  # resuming at 6 gives iteration 6 again
    halves = [list(TrainSampler(50, 4, 2, lambda it: (64, 64), seed=3, start=5, stop=7,
                                rank=r, world=2)) for r in (0, 1)]
    assert [a + b for a, b in zip(*halves)] == one


def test_multiscale_sizes():
    sizes = {network_size(it, 1000, 416, 416, 1, 0) for it in range(10, 890)}
    assert all(s[0] % 32 == 0 and s[0] == s[1] for s in sizes) and len(sizes) > 3
    assert network_size(0, 1000, 416, 416, 1, 0) == (608, 608)
    assert network_size(950, 1000, 416, 416, 1, 0) == (608, 608)
    assert network_size(500, 1000, 416, 416, 0, 0) == (416, 416)
    steps = {network_size(it, 1000, 416, 416, 1, 0, step=64) for it in range(10, 890)}
    assert all(s[0] % 64 == 0 or s == (416, 416) for s in steps) and max(steps)[0] <= 640
    assert network_size(0, 1000, 416, 416, 1, 0, step=64) == (640, 640)  # roundl(10.1)*64


# --------------------------------------------------------------------------- the loop

def _setup(tmp_path, size=64, batch=4, subdivisions=2, max_batches=200, extra="", rate=0.001,
           burn_in=2):
    images = sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:16]
    lst = tmp_path / "train.txt"
    lst.write_text("".join(f"{p}\n" for p in images))
    data = tmp_path / "t.data"
    data.write_text(f"classes=80\ntrain={lst}\nvalid={lst}\nnames={ROOT / 'cfg' / 'coco.names'}"
                    f"\nbackup={tmp_path / 'backup'}\n")
    text = re.sub(r"^batch=.*$", f"batch={batch}", TINY, flags=re.M)
    for key, value in (("subdivisions", subdivisions), ("width", size), ("height", size),
                       ("burn_in", burn_in), ("max_batches", max_batches),
                       ("learning_rate", rate)):
        text = re.sub(rf"^{key}\s*=.*$", f"{key}={value}", text, flags=re.M)
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text(text.replace("[net]\n", f"[net]\n{extra}", 1))
    return data, cfg


@requires_shared
def test_fine_tuning_lowers_the_loss(tmp_path, monkeypatch):
    from darknet_py.nn.weights import save_partial

    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, size=128, batch=8, subdivisions=2, max_batches=12)
    model = Darknet(ROOT / "cfg" / "yolov4-tiny.cfg")
    model.load_weights(ROOT / "weights" / "yolov4-tiny.weights")
    save_partial(model, tmp_path / "tiny.conv.29", 29)
    result = train(TrainConfig(str(data), str(cfg), str(tmp_path / "tiny.conv.29"),
                               workers=0, seed=1))
    first, last = np.mean(result.losses[:3]), np.mean(result.losses[-3:])
    assert last < 0.5 * first, result.losses
    final = tmp_path / "backup" / "tiny_final.weights"
    header, _ = read_weights(final)
    assert header.seen == 12 * 8 and (tmp_path / "chart.png").exists()
    # from the full COCO weights the loss starts low and stays finite
    full = train(TrainConfig(str(data), str(cfg), str(ROOT / "weights" / "yolov4-tiny.weights"),
                             workers=0, seed=1, max_batches=3, chart=None))
    assert all(math.isfinite(v) for v in full.losses) and full.losses[0] < first


@requires_shared
def test_sigterm_saves_last_and_a_restart_resumes(tmp_path):
    data, cfg = _setup(tmp_path)
    cmd = [sys.executable, "-m", "darknet_py", "detector", "train", str(data), str(cfg),
           "--workers", "0", "--chart", ""]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(" 5: "):
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    done = [int(m.group(1)) for m in re.finditer(r"^ (\d+): ", "".join(lines) + out, re.M)]
    stopped = done[-1]
    assert stopped >= 5
    last = tmp_path / "backup" / "tiny_last.weights"
    header, _ = read_weights(last)
    assert header.seen == stopped * 4
    assert (tmp_path / "backup" / "tiny_last.pt").exists()
    # restart from _last: iteration numbers and the schedule continue
    result = subprocess.run(cmd[:7] + [str(last), "--max-batches", str(stopped + 3)] + cmd[7:],
                            capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    resumed = re.findall(r"^ (\d+): \S+ \S+ avg loss, (\S+) rate", result.stdout, re.M)
    assert [int(i) for i, _ in resumed] == [stopped + 1, stopped + 2, stopped + 3]
    net = Darknet(cfg).net
    assert [float(r) for _, r in resumed] == pytest.approx(
        [learning_rate(net, k) for k in range(stopped + 1, stopped + 4)], rel=1e-5)
    for path in (tmp_path / "backup").iterdir():
        if path.suffix == ".weights":
            Darknet(cfg).load_weights(path)  # every checkpoint on disk loads
    assert "resuming optimizer momentum" in result.stdout + result.stderr


@requires_shared
def test_nan_stops_at_the_iteration_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=50, rate=1e12, burn_in=0)  # diverges
    with pytest.raises(TrainingDiverged, match=r"iteration \d+: the loss is nan .*first to go "
                                               r"non-finite.*stopped without saving"):
        train(TrainConfig(str(data), str(cfg), workers=0, chart=None))
    assert not (tmp_path / "backup" / "tiny_last.weights").exists()


@requires_shared
def test_two_process_gloo_equals_one_process(tmp_path):
    """Without batch norm (whose statistics depend on how the mini-batch is split), two
    processes with half the mini-batch each update the weights as one process does."""
    data, cfg = _setup(tmp_path, batch=4, subdivisions=1, max_batches=2)
    cfg.write_text(cfg.read_text().replace("batch_normalize=1", "batch_normalize=0"))
    for world, backup in ((1, "one"), (2, "two")):
        config = TrainConfig(str(data), str(cfg), workers=0, seed=5, chart=None,
                             backup=str(tmp_path / backup))
        if world == 1:
            train(config)
        else:
            train_distributed(config, ["cpu", "cpu"], port=_free_port())
    _, one = read_weights(tmp_path / "one" / "tiny_final.weights")
    _, two = read_weights(tmp_path / "two" / "tiny_final.weights")
    np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-6)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@requires_shared
@pytest.mark.slow
def test_torchrun_two_processes_equal_one_and_resume(tmp_path):
    """torchrun --nproc_per_node 2 (gloo): each process its share of every mini-batch,
    gradients reduced once per iteration over two subdivisions, rank 0 saving; stopping
    after 2 iterations and resuming to 3 gives one process's weights after 3."""
    data, cfg = _setup(tmp_path, batch=4, subdivisions=2, max_batches=3)
    cfg.write_text(cfg.read_text().replace("batch_normalize=1", "batch_normalize=0"))
    train(TrainConfig(str(data), str(cfg), workers=0, seed=5, chart=None,
                      backup=str(tmp_path / "one")))
    two = tmp_path / "two.data"
    two.write_text(data.read_text().replace(str(tmp_path / "backup"), str(tmp_path / "two")))
    base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(_free_port()), "-m", "darknet_py", "detector", "train",
            str(two), str(cfg)]
    flags = ["--device", "cpu", "--workers", "0", "--seed", "5", "--chart", ""]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(base + flags + ["--max-batches", "2"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count(" avg loss") == 2  # rank 0 alone prints
    resumed = subprocess.run(base[:-1] + [str(cfg), str(tmp_path / "two" / "tiny_last.weights")]
                             + flags + ["--max-batches", "3"], capture_output=True, text=True,
                             env=env, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming optimizer momentum" in resumed.stdout
    _, one = read_weights(tmp_path / "one" / "tiny_final.weights")
    _, two_w = read_weights(tmp_path / "two" / "tiny_final.weights")
    np.testing.assert_allclose(two_w, one, rtol=1e-4, atol=1e-6)


@requires_shared
def test_opencv_loads_a_trained_checkpoint(tmp_path, monkeypatch):
    import cv2

    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=2)
    train(TrainConfig(str(data), str(cfg), str(ROOT / "weights" / "yolov4-tiny.weights"),
                      workers=0, chart=None))
    weights = tmp_path / "backup" / "tiny_final.weights"
    model = Darknet(cfg)
    model.load_weights(weights)
    model.eval()
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    net.setInput(x)
    cv_out = net.forward(net.getUnconnectedOutLayersNames())
    with torch.no_grad():
        ours = model(torch.from_numpy(x))[0].numpy()
    # OpenCV: rows (y, x, anchor), columns relative x, y, w, h, obj; compare objectness
    heads = [(model.layers[i].num_anchors, model.shapes[i].h, model.shapes[i].w)
             for i in model.yolo_indices]
    offset = 0
    for (a, h, w), cv in zip(heads, cv_out):
        mine = ours[offset: offset + a * h * w].reshape(a, h, w, -1).transpose(1, 2, 0, 3)
        np.testing.assert_allclose(cv[:, 4], mine.reshape(-1, mine.shape[-1])[:, 4], atol=1e-4)
        offset += a * h * w


@requires_shared
def test_map_during_training_keeps_the_best(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=2)
    messages: list[str] = []
    result = train(TrainConfig(str(data), str(cfg), str(ROOT / "weights" / "yolov4-tiny.weights"),
                               calc_map=True, workers=0, chart=None), on_message=messages.append)
    assert any(m.startswith("mean_average_precision (mAP@0.50) = ") for m in messages)
    assert result.best_map >= 0 and (tmp_path / "backup" / "tiny_best.weights").exists()


@requires_shared
def test_ema_follows_darknet(tmp_path):

    data, cfg = _setup(tmp_path, max_batches=2400, extra="ema_alpha=0.5\n")
    trainer = Trainer.from_config(TrainConfig(str(data), str(cfg), workers=0, chart=None))
    w = trainer.model.layers[0].conv.weight
    hook = trainer.ema
    hook.update(1199)
    assert hook.ema is None  # starts at max_batches / 2
    hook.update(1200)
    start = w.detach().clone()
    with torch.no_grad():
        w.add_(1.0)
    hook.update(1201)
    torch.testing.assert_close(hook.ema["layers.0.conv.weight"], start + 0.5)
    hook.update(1400)  # max_batches - 1000: the average goes into the model
    torch.testing.assert_close(w.detach(), start + 0.5)


@requires_shared
def test_loading_does_not_depend_on_workers(tmp_path):
    from darknet_py.train.dataset import Augment, DetectionDataset, collate

    images = [str(p) for p in sorted((COCO128 / "images" / "train2017").glob("*.jpg"))[:8]]
    aug = Augment(jitter=0.3, resize=1.5, flip=True, hue=0.1, saturation=1.5, exposure=1.5,
                  mosaic=True)
    dataset = DetectionDataset(images, 80, aug)
    batches = []
    for workers in (0, 2):
        sampler = TrainSampler(len(images), 4, 1, lambda it: (96, 96), seed=9, stop=2)
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler,
                                             collate_fn=collate, num_workers=workers)
        batches.append(list(loader))
    for (x0, t0), (x1, t1) in zip(*batches):
        assert torch.equal(x0, x1) and torch.equal(t0, t1)
    assert batches[0][0][0].shape == (4, 3, 96, 96)


@requires_shared
def test_nan_recovery_reloads_and_lowers_the_rate(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=50, rate=1e12, burn_in=0)  # diverges
    messages: list[str] = []
    with pytest.raises(TrainingDiverged):  # 1e12 stays too high after three tenfold cuts
        train(TrainConfig(str(data), str(cfg), workers=0, chart=None, nan_recovery=True),
              on_message=messages.append)
    reloads = [m for m in messages if "reloaded the last good weights" in m]
    assert [m.rsplit("rate x", 1)[1] for m in reloads] == ["0.1", "0.01", "0.001"]


@requires_shared
def test_bf16_autocast_path_trains(tmp_path, monkeypatch):
    """The AMP path (autocast; bf16 needs no grad scaler), exercised on the CPU."""
    monkeypatch.chdir(tmp_path)
    data, cfg = _setup(tmp_path, max_batches=2)
    result = train(TrainConfig(str(data), str(cfg), str(ROOT / "weights" / "yolov4-tiny.weights"),
                               workers=0, chart=None, amp="bf16"))
    assert result.iterations == 2 and all(math.isfinite(v) for v in result.losses)


def test_map_hook_and_chart_name_the_iou_threshold(tmp_path, monkeypatch):
    """-iou_thresh 0.75: Darknet prints mAP@0.75, and so does the chart."""
    from darknet_py.train import chart
    from darknet_py.train.hooks import ChartHook, MapHook
    from darknet_py.train.state import TrainState

    said, saved, texts = [], [], []
    hook = MapHook(lambda: 0.25, every=100, burn_in=0, max_batches=400, save=saved.append,
                   say=said.append, start=0, iou_thresh=0.75)
    state = TrainState(iteration=400)
    hook.after_step(state)
    assert said[0] == "mean_average_precision (mAP@0.75) = 0.250000"
    assert saved == ["best"] and state.maps == [(400, 0.25)] and state.best_map == 0.25
    real = chart.cv2.putText

    def put_text(img, text, *args, **kw):
        texts.append(text)
        return real(img, text, *args, **kw)

    monkeypatch.setattr(chart.cv2, "putText", put_text)
    ChartHook(str(tmp_path / "chart.png"), 400, iou_thresh=0.75).after_train(state)
    assert any("mAP@0.75" in t for t in texts) and (tmp_path / "chart.png").exists()


@requires_shared
def test_device_augment_trains_on_the_cpu_loaders_batches(tmp_path):
    """--device-augment: the same batches as the CPU loader (within one level, labels
    equal) through the trainer's loader, and a run trains; blur is refused in one line."""
    data, cfg = _setup(tmp_path, extra="mosaic=1\n", max_batches=2)
    loaders = [Trainer.from_config(TrainConfig(str(data), str(cfg), workers=0, chart=None,
                                               seed=3, device_augment=on)).loader
               for on in (False, True)]
    for (x0, t0), (x1, t1) in zip(*(itertools.islice(ld(0), 3) for ld in loaders)):
        assert x0.shape == x1.shape and x1.dtype == torch.uint8
        assert int((x0.int() - x1.int()).abs().max()) <= 1 and torch.equal(t0, t1)
    result = train(TrainConfig(str(data), str(cfg), workers=1, chart=None,
                               device_augment=True))
    assert result.iterations == 2 and all(math.isfinite(v) for v in result.losses)
    data, cfg = _setup(tmp_path, extra="blur=1\n")
    with pytest.raises(DarknetError, match="--device-augment does not do blur=1"):
        Trainer.from_config(TrainConfig(str(data), str(cfg), device_augment=True))
