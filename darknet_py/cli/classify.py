"""``classifier predict``: Darknet's classifier command."""

from __future__ import annotations

import time

import click

from .. import assets
from ..errors import DataError
from ..io.data import class_name, read_data_cfg, read_names
from .app import cli
from .options import decoder_option, device_name, image_paths, load_model, train_options


@cli.group()
def classifier() -> None:
    """Darknet's classifier commands: predict, valid, train."""


@classifier.command("predict")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@click.argument("images", nargs=-1)
@click.option("-t", "--top", type=click.IntRange(0), default=0,
              help="How many classes to print (0: the .data file's top=, else 1).")
@decoder_option
def classifier_predict(data, cfg, weights, images, top, decoder):
    """Classify: darknet-py classifier predict DATA CFG WEIGHTS [IMAGE...] prints the top
    classes of each image as Darknet does (with no IMAGE, paths are read from standard
    input)."""
    from ..infer.classify import classify, top_k

    model, images = load_model(cfg, weights, images)
    model.eval()
    config = read_data_cfg(assets.resolve(data))
    path = config.resolve("names") or config.resolve("labels", "data/labels.list")
    names = read_names(path)
    classes = config.classes or 2
    outputs = model.shapes[model.plan.output].size
    click.echo(f" classes = {classes}, output in cfg = {outputs} ")
    last = model.cfg.layers[-1].kind
    if classes != outputs and last in ("softmax", "cost"):
        raise DataError(f"{config.path}: classes={classes}, but the cfg's last layer gives "
                        f"{outputs} values")
    top = min(top or config.count("top", 1), classes)
    for image in image_paths(images):
        start = time.perf_counter()
        probs = classify(model, image, decoder)
        click.echo(f"{model.width} {model.height}")
        click.echo(f"{image}: Predicted in {(time.perf_counter() - start) * 1000:f} "
                   "milli-seconds.")
        values = probs.tolist()
        for index in top_k(values, top):
            click.echo(f"{class_name(names, index)}: {values[index]:f}")


@classifier.command("valid")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@decoder_option
def classifier_valid(data, cfg, weights, decoder):
    """Running top-1 and top-k accuracy over the .data file's valid= list: darknet-py
    classifier valid DATA CFG WEIGHTS (an image's class is the first of labels= found in
    its path, as Darknet's rule; top= sets k)."""
    from ..eval.classifier import validate_classifier

    model, _ = load_model(cfg, weights, ())
    model.eval()
    config = read_data_cfg(assets.resolve(data))
    labels = read_names(config.resolve("labels", "data/labels.list"))
    classes = config.classes or 2
    images = config.image_list("valid", "train")
    click.echo(" TOP calculation...")
    for line in validate_classifier(model, images, labels, classes,
                                    config.count("top", 1), decoder):
        click.echo(line.line())


@classifier.command("train")
@click.argument("data")
@click.argument("cfg")
@click.argument("weights", required=False)
@train_options("Where to draw the loss ('' to skip).")
@click.option("-topk", "--topk", "calc_topk", is_flag=True,
              help="Top-k accuracy (k: the .data file's top=, 5 by default) on valid= every "
                   "two epochs and at the end.")
def classifier_train(data, cfg, weights, clear, dont_show, device, gpu_index, chart, workers,
                     seed, max_batches, nan_recovery, calc_topk):
    """Train a classifier: darknet-py classifier train DATA CFG [WEIGHTS], as Darknet's
    train_classifier (train= list, labels= found in each path, classes=; the cfg ends in
    [softmax], optionally [cost])."""
    from ..train import TrainConfig, train

    config = TrainConfig(
        data=str(assets.resolve(data)), cfg=str(assets.resolve(cfg)),
        weights=str(assets.resolve(weights)) if weights else None, clear=clear,
        device=device_name(device, gpu_index), workers=workers, seed=seed,
        max_batches=max_batches, nan_recovery=nan_recovery, chart=chart or None,
        task="classifier", calc_topk=calc_topk)
    result = train(config, lambda report: click.echo(report.line()), click.echo)
    if result.stopped:
        click.echo(f"stopped at iteration {result.iterations}; saved _last")
