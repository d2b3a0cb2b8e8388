"""Darknet's data formats: label paths, label lines, image lists and .data files."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from darknet_py.io.data import (DataError, label_path, parse_labels, read_data_cfg, read_image_list,
                                read_labels)


@pytest.mark.parametrize("image, label", [
    ("/d/coco/images/train2017/000000000009.jpg", "/d/coco/labels/train2017/000000000009.txt"),
    ("/d/VOC2007/JPEGImages/000001.jpg", "/d/VOC2007/labels/000001.txt"),
    ("data/obj/img1.PNG", "data/obj/img1.txt"),
    ("/a/images/b/images/c.jpeg", "/a/labels/b/images/c.txt"),  # first match only
    ("C:\\data\\images\\x.bmp", "C:\\data\\labels\\x.txt"),
])
def test_label_path_follows_darknet_rule(image, label):
    assert label_path(image) == label


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
