"""Darknet's data formats: label paths, label lines, image lists and .data files."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from darknet_py.io.data import (DataError, LabelFiles, darknet_label_path, find_label_file,
                                label_path, parse_labels, read_data_cfg, read_image_list,
                                read_labels)


@pytest.mark.parametrize("image, label", [
    ("/d/coco/images/train2017/000000000009.jpg", "/d/coco/labels/train2017/000000000009.txt"),
    ("/d/coco/images/val2014/1.JPG", "/d/coco/labels/val2014/1.txt"),
    ("/d/VOC2007/JPEGImages/000001.jpg", "/d/VOC2007/labels/000001.txt"),
    ("data/obj/img1.PNG", "data/obj/img1.txt"),
    ("data/obj/images/a.jpg", "data/obj/images/a.txt"),  # AlexeyAB: no /images/ rule
    ("C:\\data\\JPEGImages\\x.bmp", "C:\\data\\labels\\x.txt"),
])
def test_darknet_label_path_is_alexeyab_rule(image, label):
    assert darknet_label_path(image) == label
    assert label_path(image) == label  # no file on disk: Darknet's path


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("0 0.5 0.5 0.2 0.2\n")
    return path


@pytest.mark.parametrize("image, label, rule", [
    ("obj/images/a.jpg", "obj/images/a.txt", "darknet"),                       # AlexeyAB
    ("coco/images/train2017/b.jpg", "coco/labels/train2017/b.txt", "darknet"),  # COCO
    ("VOC2007/JPEGImages/c.jpg", "VOC2007/labels/c.txt", "darknet"),            # VOC
    ("yolo/images/train/d.jpg", "yolo/labels/train/d.txt", "yolo"),             # YOLO tree
    ("a/images/b/images/e.png", "a/images/b/labels/e.txt", "yolo"),  # the last images/
])
def test_label_rules_on_disk(tmp_path, image, label, rule):
    _touch(tmp_path / image)
    _touch(tmp_path / label)
    assert find_label_file(tmp_path / image) == (str(tmp_path / label), rule)


def test_darknet_rule_wins_over_the_yolo_fallback(tmp_path):
    image = _touch(tmp_path / "obj/images/a.jpg")
    beside = _touch(tmp_path / "obj/images/a.txt")
    _touch(tmp_path / "obj/labels/a.txt")
    assert find_label_file(image) == (str(beside), "darknet")


def test_label_files_summary_counts_each_rule(tmp_path):
    images = [_touch(tmp_path / f"obj/images/{k}.jpg") for k in range(3)]
    _touch(tmp_path / "obj/images/0.txt")
    _touch(tmp_path / "obj/labels/1.txt")
    files = LabelFiles.find(images)
    assert files.rules == ["darknet", "yolo", None]
    assert files.summary() == ("labels: 2 of 3 images have a label file (1 by Darknet's rule "
                               "(AlexeyAB replace_image_to_label), 1 by the /images/ -> "
                               "/labels/ fallback)")
    labels = read_labels([str(p) for p in images], 80, files)
    assert [len(x) for x in labels] == [1, 1, 0]


def test_parse_labels_reads_values_and_skips_bad_lines(caplog):
    text = ("0 0.5 0.5 0.2 0.4\n"
            "\n"
            "3 0.1 0.2 0.3\n"          # too few fields
            "x 0.1 0.2 0.3 0.4\n"      # not a class id
            "80 0.5 0.5 0.1 0.1\n"     # class out of range
            "2 1.2 0.5 0.1 0.1\n"      # outside the image
            "1 0.25 0.75 0.5 0.125\n")
    with caplog.at_level(logging.WARNING):
        labels = parse_labels(text, "img.txt", classes=80)
    np.testing.assert_array_equal(labels, np.array([[0, .5, .5, .2, .4], [1, .25, .75, .5, .125]],
                                                   dtype=np.float32))
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[1] for m in messages] == ["3", "4", "5", "6"]
    assert "class 80 is outside 0..79" in messages[2]


def test_read_labels_missing_file_is_an_empty_image_warned_once(tmp_path, caplog):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    images = [str(tmp_path / "images" / f"{i}.jpg") for i in range(3)]
    (tmp_path / "labels" / "1.txt").write_text("4 0.5 0.5 0.5 0.5\n")
    with caplog.at_level(logging.WARNING):
        labels = read_labels(images, 80)
    assert [len(x) for x in labels] == [0, 1, 0]
    assert len(caplog.records) == 1 and "2 of 3 images have no label file" in caplog.text


def test_image_list_resolves_beside_the_list_and_names_missing_images(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"x")
    lst = tmp_path / "list.txt"
    lst.write_text("a.jpg\n\n")
    assert read_image_list(lst) == [str(tmp_path / "a.jpg")]
    lst.write_text("a.jpg\nmissing.jpg\n")
    with pytest.raises(DataError, match=r"list.txt:2: image missing.jpg not found"):
        read_image_list(lst)


def test_data_image_list_needs_a_list_key(tmp_path):
    data = tmp_path / "x.data"
    data.write_text("classes = 2\nnames = x.names\n")
    with pytest.raises(DataError, match=r"x.data: no valid= or train= line"):
        read_data_cfg(data).image_list("valid", "train")
    (tmp_path / "empty.txt").write_text("\n")
    data.write_text(f"classes = 2\nvalid = {tmp_path / 'empty.txt'}\n")
    with pytest.raises(DataError, match="image list is empty"):
        read_data_cfg(data).image_list("valid", "train")
